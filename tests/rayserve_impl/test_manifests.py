"""manifests/rayserve: valid for Serve and KubeRay, and consistent with each other and the code.

The CRD schema comes from the folder named by TWINSERVE_CRD_DIR (layout kuberay/ray.io_*.yaml;
CI: ../shared/crds); without it that one test is skipped, saying so. Nothing here starts Ray.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from rayserve_impl.app import DEPLOYMENT_OPTIONS, build_app
from rayserve_impl.live_config import apply_user_config
from rayserve_impl.serve_config import (
    CLUSTER_OVERLAY,
    MANIFEST_DIR,
    RAYSERVICE_PATH,
    cluster_config,
    load_serve_config,
    local_config,
    with_deployment_overrides,
)
from shared_pipeline.config import Settings
from shared_pipeline.revision import RevisionChange, revision_of

PODMONITOR_PATH = MANIFEST_DIR / "podmonitor.yaml"
MONITORING_PODMONITORS = MANIFEST_DIR.parent / "monitoring" / "podmonitors.yaml"


def rayservice() -> dict[str, Any]:
    return yaml.safe_load(RAYSERVICE_PATH.read_text())


def serve_config_v2() -> dict[str, Any]:
    return yaml.safe_load(rayservice()["spec"]["serveConfigV2"])


# ---------------------------------------------------------------- the Serve config
def test_serve_config_is_a_valid_serve_deploy_config() -> None:
    schema = ServeDeploySchema.model_validate(load_serve_config())
    app = schema.applications[0]
    assert app.import_path == "rayserve_impl.app:build_app"
    assert {d.name for d in app.deployments} == set(DEPLOYMENT_OPTIONS)


def test_rayservice_serve_config_is_the_same_config_plus_the_gpu_overlay() -> None:
    ServeDeploySchema.model_validate(serve_config_v2())
    assert serve_config_v2() == cluster_config(load_serve_config())
    # ... and the overlay only gives the generators GPUs, nothing else.
    assert set(CLUSTER_OVERLAY) == {"generator-small", "generator-large"}
    for options in CLUSTER_OVERLAY.values():
        assert set(options) == {"ray_actor_options"}
        assert options["ray_actor_options"]["num_gpus"] == 1


def test_a_changed_serve_config_no_longer_matches_the_rayservice() -> None:
    changed = with_deployment_overrides(load_serve_config(), {"reranker": {
        "max_queued_requests": 1}})
    assert serve_config_v2() != cluster_config(changed)


def test_the_config_repeats_the_code_defaults() -> None:
    """app.py explains each option; the YAML an operator edits must say the same."""
    for deployment in load_serve_config()["applications"][0]["deployments"]:
        options = {k: v for k, v in deployment.items() if k not in ("name", "user_config")}
        assert options == DEPLOYMENT_OPTIONS[deployment["name"]], deployment["name"]


def test_every_deployment_bounds_its_queue_and_answers_overload_with_retry_after() -> None:
    for deployment in load_serve_config()["applications"][0]["deployments"]:
        assert deployment["max_queued_requests"] > 0, deployment["name"]  # -1 = unbounded
        assert deployment["backpressure_config"]["retry_after_s"] >= 1
        scaling = deployment["autoscaling_config"]
        assert scaling["target_ongoing_requests"] < deployment["max_ongoing_requests"]
        assert deployment["user_config"] == {}  # the same live settings everywhere


def test_every_deployment_fits_a_two_cpu_local_ray() -> None:
    deployments = load_serve_config()["applications"][0]["deployments"]
    cpus = sum(d["ray_actor_options"]["num_cpus"] for d in deployments)
    assert cpus <= 2 - 0.4, f"{cpus} CPUs leave no room for one autoscaled generator"
    assert all("num_gpus" not in d["ray_actor_options"] for d in deployments)


def test_the_builder_binds_one_deployment_per_stage_behind_the_ingress() -> None:
    from ray.serve._private.build_app import build_app as build

    built = build(build_app({}), name="twinserve")
    assert built.ingress_deployment_name == "ingress"
    assert {d.name for d in built.deployments} == set(DEPLOYMENT_OPTIONS)
    generator = next(d for d in built.deployments if d.name == "generator-small")
    assert generator.max_queued_requests == 16
    assert generator.backpressure_config.status_code == 503


def test_local_config_binds_loopback_and_carries_the_settings(settings: Settings) -> None:
    config = local_config(settings, 8123, overrides={"generator-small": {
        "max_queued_requests": 2}})
    ServeDeploySchema.model_validate(config)
    assert config["http_options"]["host"] == "127.0.0.1"
    assert config["http_options"]["port"] == 8123
    assert Settings(**config["applications"][0]["args"]["settings"]) == settings
    small = next(d for d in config["applications"][0]["deployments"]
                 if d["name"] == "generator-small")
    assert small["max_queued_requests"] == 2 and small["max_ongoing_requests"] == 8
    with pytest.raises(ValueError, match="no deployment named"):
        local_config(settings, 8123, overrides={"generator": {}})


# ---------------------------------------------------------------- user_config
def test_user_config_changes_settings_and_the_revision(settings: Settings) -> None:
    live = {"revision_name": "b", "min_evidence_score": 0.5,
            "prompt_template": "Answer from these: {passages}"}
    changed = apply_user_config(settings, live)
    assert changed.route.min_evidence_score == 0.5
    assert changed.generate.prompt_template == "Answer from these: {passages}"
    assert revision_of(changed).startswith("b-")
    assert revision_of(changed) != revision_of(settings)
    assert apply_user_config(settings, {}) == settings


@pytest.mark.parametrize(("user_config", "problem"), [
    ({"prompt_template": "no placeholder"}, "passages"),
    ({"max_model_len": 10}, "max_model_len"),  # needs a restart: not a live setting
    ({"revision_name": "Bad Name"}, "revision_name"),
])
def test_user_config_refuses_what_it_cannot_apply_in_place(settings: Settings,
                                                           user_config: dict,
                                                           problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        apply_user_config(settings, user_config)
    assert "max_model_len" not in RevisionChange.model_fields


# ---------------------------------------------------------------- KubeRay + Prometheus
def _unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the schema does not declare (an API server would prune them silently)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict) and schema.get("properties") is not None:
        for key, item in value.items():
            if key in schema["properties"]:
                found += _unknown_fields(item, schema["properties"][key], f"{where}.{key}")
            elif not isinstance(schema.get("additionalProperties"), dict):
                found.append(f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{where}[{i}]")
    return found


@pytest.fixture(scope="module")
def rayservice_schema() -> dict[str, Any]:
    folder = os.environ.get("TWINSERVE_CRD_DIR")
    if not folder:
        pytest.skip("TWINSERVE_CRD_DIR is not set: no CRD schema to validate the RayService "
                    "against (CI sets it to ../shared/crds; or use `kubectl get crd -o yaml`)")
    path = Path(folder) / "kuberay" / "ray.io_rayservices.yaml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # megabytes of YAML
    crd = yaml.load(path.read_text(), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def rayservice_errors(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return errors + [f"unknown field {f}" for f in _unknown_fields(doc, schema)]


def test_rayservice_matches_the_kuberay_v1_crd(rayservice_schema: dict[str, Any]) -> None:
    doc = rayservice()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    assert rayservice_errors(doc, rayservice_schema) == []


def test_the_crd_validation_catches_a_broken_rayservice(
        rayservice_schema: dict[str, Any]) -> None:
    broken = rayservice()
    broken["spec"]["rayClusterDeletionDelaySeconds"] = "sixty"
    broken["spec"]["rayClusterConfig"]["headGroupSpec"]["replicas"] = 1  # heads do not scale
    errors = rayservice_errors(broken, rayservice_schema)
    assert any("sixty" in e for e in errors) and any("replicas" in e for e in errors)


def test_cluster_shape_cpu_head_gpu_workers_fixed_metrics_port() -> None:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    for tier in ("small", "large"):  # one GPU group per tier, the tier's generator only
        gpu = groups[f"gpu-{tier}"]
        container = gpu["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        wanted = CLUSTER_OVERLAY[f"generator-{tier}"]["ray_actor_options"]["resources"]
        assert json.loads(json.loads(gpu["rayStartParams"]["resources"])) == wanted
        others = [g["rayStartParams"].get("resources", "") for name, g in groups.items()
                  if name != f"gpu-{tier}"]
        assert not any(key in other for key in wanted for other in others)
    for group in [head, *cluster["workerGroupSpecs"]]:
        assert group["rayStartParams"]["metrics-export-port"] == "8080"
        ports = {p["name"]: p["containerPort"]
                 for p in group["template"]["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == 8080


def _relabel(name: str, rule: dict[str, Any]) -> str:
    """Prometheus `replace` semantics: the regex is anchored; `$1` is its first group."""
    match = re.fullmatch(rule["regex"], name)
    if not match:
        return name
    return re.sub(r"\$(\d+)", lambda m: match.group(int(m.group(1))), rule["replacement"])


def test_podmonitor_strips_the_ray_prefix_from_pipeline_metrics_only() -> None:
    monitor = yaml.safe_load(PODMONITOR_PATH.read_text())
    assert monitor["kind"] == "PodMonitor"
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics"
    (rule,) = endpoint["metricRelabelings"]
    assert rule["sourceLabels"] == ["__name__"] and rule["targetLabel"] == "__name__"
    assert _relabel("ray_pipeline_requests_total", rule) == "pipeline_requests_total"
    assert _relabel("ray_pipeline_stage_seconds_bucket", rule) == "pipeline_stage_seconds_bucket"
    for own in ("ray_serve_num_http_requests_total", "ray_vllm_num_requests_running"):
        assert _relabel(own, rule) == own


def test_podmonitor_is_the_one_the_monitoring_manifests_ship() -> None:
    if not MONITORING_PODMONITORS.exists():
        pytest.skip("manifests/monitoring/podmonitors.yaml is not there")
    shipped = [d for d in yaml.safe_load_all(MONITORING_PODMONITORS.read_text())
               if d and d["metadata"]["name"] == "twinserve-rayserve"]
    assert shipped == [yaml.safe_load(PODMONITOR_PATH.read_text())]

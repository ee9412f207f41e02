"""Every manifest, as a cluster would run it: hardened containers, GPU images, one set of settings.

Covers all of manifests/ (both stacks, storage, the Knative variant rendered by `kubectl
kustomize`). No cluster runs here: these check what the files say, and the CRD schemas
(TWINSERVE_CRD_DIR) check that KServe and KubeRay accept it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kserve_impl.cluster.standard import canary_predictor
from rayserve_impl.serve_config import RAYSERVICE_PATH
from shared_pipeline.cluster_settings import (
    CPU_CLUSTER_SETTINGS,
    CPU_TIER_MODELS,
    GPU_CLUSTER_SETTINGS,
    GPU_TIER_MODELS,
    MODEL_MOUNT,
    MODELS_PVC,
    settings_env,
    storage_uri,
)
from shared_pipeline.config import Settings
from tests.kserve_impl.test_manifests import load_crd_schemas, schema_errors

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
KSERVE = MANIFESTS / "kserve"
KNATIVE = MANIFESTS / "kserve-knative"
IMAGE = "registry.example.com/twinserve/twinserve:0.1.0"
GPU_IMAGE = IMAGE + "-gpu"
STORAGE_SCHEMES = ("pvc://", "s3://", "gs://", "hf://")


def shipped_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file, document) for every Kubernetes object in a YAML file under manifests/."""
    docs = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc:
                docs.append((str(path.relative_to(MANIFESTS)), doc))
    return docs


def knative_documents() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: cannot render manifests/kserve-knative")
    out = subprocess.run(["kubectl", "kustomize", str(KNATIVE)], check=True,
                         capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def containers(value: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every container spec inside `value` (pod templates, ISVC predictors, Jobs), anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("containers", "initContainers") and isinstance(item, list):
                for c in item:
                    yield f"{where}.{key}[{c.get('name')}]", c
            else:
                yield from containers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from containers(item, f"{where}[{i}]")


def hardening_problems(kind: str, container: dict[str, Any]) -> list[str]:
    """What issue 15 item 6 asks of a container and this one lacks."""
    problems = []
    security = container.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(part) or {})
        if missing:
            problems.append(f"resources.{part} lacks {sorted(missing)}")
    # A run-to-completion Job serves nothing: readiness has no meaning and a liveness probe
    # would restart a long download; its activeDeadlineSeconds bounds it instead.
    if kind != "Job":
        problems += [f"no {probe}" for probe in ("livenessProbe", "readinessProbe")
                     if probe not in container]
    return problems


def all_containers() -> list[tuple[str, str, dict[str, Any]]]:
    found = [(f"{name}:{doc['metadata']['name']}{where}", doc["kind"], c)
             for name, doc in shipped_documents() for where, c in containers(doc)]
    assert len(found) >= 13, "the walk lost containers"  # 8 ISVC, 4 Ray groups, the Job
    return found


def gpu_requested(container: dict[str, Any]) -> bool:
    resources = container.get("resources") or {}
    return any("nvidia.com/gpu" in (resources.get(p) or {}) for p in ("requests", "limits"))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def isvcs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceService"}


def standard(folder: Path) -> list[dict[str, Any]]:
    return [d for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml"
            for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.fixture(scope="module")
def crd_schemas() -> dict:
    folder = os.environ.get("TWINSERVE_CRD_DIR")
    if not folder:
        pytest.skip("TWINSERVE_CRD_DIR is not set: no CRD schemas to validate against")
    return load_crd_schemas(Path(folder))


# ---------------------------------------------------------------- issue 15 item 6
def test_every_container_is_non_root_bounded_and_probed() -> None:
    problems = {where: p for where, kind, c in all_containers()
                if (p := hardening_problems(kind, c))}
    assert problems == {}


def test_the_hardening_check_catches_a_bare_container() -> None:
    bare = {"name": "x", "image": IMAGE, "resources": {"requests": {"cpu": "1"}}}
    assert hardening_problems("Deployment", bare) == [
        "runAsNonRoot is not true", "allowPrivilegeEscalation is not false",
        "resources.requests lacks ['memory']", "resources.limits lacks ['cpu', 'memory']",
        "no livenessProbe", "no readinessProbe"]


def test_the_kuberay_autoscaler_sidecar_is_hardened_too() -> None:
    options = yaml.safe_load(RAYSERVICE_PATH.read_text())["spec"]["rayClusterConfig"][
        "autoscalerOptions"]
    assert options["securityContext"]["runAsNonRoot"] is True
    assert options["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(options["resources"]) == {"requests", "limits"}


# ---------------------------------------------------------------- GPU images
def test_every_gpu_container_runs_the_gpu_image() -> None:
    gpu = [(where, c["image"]) for where, _, c in all_containers() if gpu_requested(c)]
    assert len(gpu) == 4, gpu  # two KServe generators, two Ray GPU groups
    assert [w for w, image in gpu if image != GPU_IMAGE] == []
    cpu_generators = isvcs(standard(KSERVE / "cpu"))
    assert {d["spec"]["predictor"]["containers"][0]["image"]
            for d in cpu_generators.values()} == {IMAGE}


# ---------------------------------------------------------------- model artifacts + settings
@pytest.mark.parametrize(("folder", "models"), [(KSERVE, GPU_TIER_MODELS),
                                                (KSERVE / "cpu", CPU_TIER_MODELS)])
def test_kserve_generators_declare_their_model_for_the_storage_initializer(
        folder: Path, models: dict[str, str]) -> None:
    generators = {n: d for n, d in isvcs(standard(folder)).items() if n.startswith("generator-")}
    assert sorted(generators) == ["generator-large", "generator-small"]
    for name, doc in generators.items():
        container = doc["spec"]["predictor"]["containers"][0]
        uri = env_of(container)["STORAGE_URI"]
        assert uri.startswith(STORAGE_SCHEMES) and uri == storage_uri(name[10:], models)
        assert {"configMapRef": {"name": "twinserve-settings"}} in container["envFrom"]


def test_every_kserve_stage_loads_the_one_settings_config_map() -> None:
    for doc in isvcs(standard(KSERVE)).values():
        container = doc["spec"]["predictor"]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "twinserve-settings"}}]


@pytest.mark.parametrize(("file", "overrides"), [("gpu.yaml", GPU_CLUSTER_SETTINGS),
                                                 ("cpu.yaml", CPU_CLUSTER_SETTINGS)])
def test_the_config_maps_say_the_cluster_settings(file: str, overrides: dict,
                                                  monkeypatch) -> None:
    data = yaml.safe_load((KSERVE / "settings" / file).read_text())["data"]
    assert data == settings_env(overrides)
    for key, value in data.items():  # ... and pydantic reads them back as the same settings
        monkeypatch.setenv(key, value)
    from_env = Settings().generate
    assert from_env.tiers == Settings(**overrides).generate.tiers
    assert from_env.device == overrides["generate"]["device"]
    for tier in ("small", "large"):
        assert Settings().tier_model(tier) == MODEL_MOUNT


def test_the_rayservice_runs_the_same_settings_and_mounts_the_same_artifacts() -> None:
    ray = yaml.safe_load(RAYSERVICE_PATH.read_text())
    app = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"][0]
    assert app["args"]["settings"] == GPU_CLUSTER_SETTINGS  # what KServe's ConfigMap says
    groups = {g["groupName"]: g for g in ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    kserve = isvcs(standard(KSERVE))
    for tier, folder in GPU_TIER_MODELS.items():
        pod = groups[f"gpu-{tier}"]["template"]["spec"]
        (mount,) = pod["containers"][0]["volumeMounts"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == MODELS_PVC
        assert (mount["mountPath"], mount["subPath"], mount["readOnly"]) == (
            MODEL_MOUNT, folder, True)
        kserve_uri = env_of(kserve[f"generator-{tier}"]["spec"]["predictor"]["containers"][0])[
            "STORAGE_URI"]
        assert kserve_uri == f"pvc://{volume['persistentVolumeClaim']['claimName']}/" \
                             f"{mount['subPath']}"


def test_the_models_pvc_exists_for_both_stacks() -> None:
    claims = [d for _, d in shipped_documents() if d["kind"] == "PersistentVolumeClaim"]
    assert [c["metadata"]["name"] for c in claims] == [MODELS_PVC]


# ---------------------------------------------------------------- rollback on a cluster
def test_the_knative_variant_is_the_standard_stack_in_knative_mode(crd_schemas: dict) -> None:
    rendered = knative_documents()
    base = [d for d in standard(KSERVE) if d["kind"] != "ConfigMap"]
    knative = [d for d in rendered if d["kind"] != "ConfigMap"]
    assert sorted(d["metadata"]["name"] for d in knative) == sorted(
        d["metadata"]["name"] for d in base)
    base_isvcs = isvcs(base)
    for doc in knative:
        assert doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
        assert schema_errors(doc, crd_schemas) == [], doc["metadata"]["name"]
        if doc["kind"] != "InferenceService":
            continue
        predictor = doc["spec"]["predictor"]
        assert "serving.kserve.io/autoscalerClass" not in doc["metadata"]["annotations"]
        assert "autoScaling" not in predictor and predictor["scaleMetric"] == "concurrency"
        stable = base_isvcs[doc["metadata"]["name"]]["spec"]["predictor"]
        assert predictor["containers"] == stable["containers"]  # same code, same settings
        # What a rollout patches (kserve_impl/cluster.py): a canary share; 0 rolls back.
        for percent in (10, 0):
            canary = copy.deepcopy(doc)
            canary["spec"]["predictor"]["canaryTrafficPercent"] = percent
            assert schema_errors(canary, crd_schemas) == []


def test_a_standard_canary_of_a_generator_is_schema_valid(crd_schemas: dict) -> None:
    """Standard mode's `spec.canary`, built by kserve_impl/cluster/standard.py; KServe's webhook
    also wants the stable predictor to declare its model, which the generators now do."""
    for name, doc in isvcs(standard(KSERVE)).items():
        if not name.startswith("generator-"):
            continue
        stable = doc["spec"]["predictor"]
        assert env_of(stable["containers"][0])["STORAGE_URI"].startswith(STORAGE_SCHEMES)
        canary = canary_predictor(stable, {"TWINSERVE_GENERATE__DELAY_MS": "500"}, "b")
        patched = copy.deepcopy(doc)
        patched["spec"]["canary"] = [{"trafficPercent": 10, "predictor": canary}]
        assert schema_errors(patched, crd_schemas) == [], name

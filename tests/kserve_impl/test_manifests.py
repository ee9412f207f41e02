"""manifests/kserve: valid against the KServe CRD schemas, and consistent with the code that runs.

The schemas come from the folder named by TWINSERVE_CRD_DIR (CI: ../shared/crds; a user: the
output of `kubectl get crd <name> -o yaml` from their cluster, one or more files, `kind: List`
accepted). Without it the schema test is skipped, saying so. Unknown fields fail too, as
`kubectl apply --validate=strict` would, since an API server silently prunes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kserve_impl.graph import load_graph
from kserve_impl.manifests import (
    MANIFEST_DIR,
    ORCHESTRATED_DIR,
    iter_documents,
    load_services,
    stage_url_env,
)
from kserve_impl.server import build_parser
from shared_pipeline.schemas import STAGES

# The KServe resources (settings/ holds ConfigMaps, kustomization.yaml is kustomize's own).
ALL_FILES = sorted(p for p in [*MANIFEST_DIR.glob("*.yaml"), *MANIFEST_DIR.glob("cpu/*.yaml")]
                   if p.name != "kustomization.yaml")
CPU_FILE = MANIFEST_DIR / "cpu" / "generators-cpu.yaml"


def documents(files: list[Path] = ALL_FILES) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in files for doc in iter_documents(path)]


def load_crd_schemas(folder: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, kind, version) -> openAPIV3Schema, from every CRD found under `folder`."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes of YAML
    schemas = {}
    for path in sorted(folder.rglob("*.y*ml")):
        with path.open(encoding="utf-8") as fh:
            docs = [d for d in yaml.load_all(fh, Loader=loader) if d]
        for doc in docs:
            items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
            for crd in items:
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    key = (spec["group"], spec["names"]["kind"], version["name"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the schema does not declare (an API server would drop them without a word)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                found += unknown_fields(item, props[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{where}.{key}")
            elif props is not None:
                found.append(f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{where}[{i}]")
    return found


def schema_errors(doc: dict[str, Any], schemas: dict) -> list[str]:
    group, version = doc["apiVersion"].split("/")
    key = (group, doc["kind"], version)
    if key not in schemas:
        return [f"no CRD schema for {key}"]
    schema = schemas[key]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return errors + [f"unknown field {f}" for f in unknown_fields(doc, schema)]


@pytest.fixture(scope="module")
def crd_schemas() -> dict:
    folder = os.environ.get("TWINSERVE_CRD_DIR")
    if not folder:
        pytest.skip("TWINSERVE_CRD_DIR is not set: no CRD schemas to validate the manifests "
                    "against (CI sets it to ../shared/crds; or use `kubectl get crd -o yaml`)")
    schemas = load_crd_schemas(Path(folder))
    assert schemas, f"TWINSERVE_CRD_DIR={folder} holds no CustomResourceDefinition"
    return schemas


@pytest.mark.parametrize(("path", "doc"), documents(),
                         ids=[f"{p.name}:{d['metadata']['name']}" for p, d in documents()])
def test_manifest_matches_its_crd_schema(path: Path, doc: dict, crd_schemas: dict) -> None:
    assert schema_errors(doc, crd_schemas) == [], path


def test_the_validation_catches_a_broken_manifest(crd_schemas: dict) -> None:
    graph = next(d for _, d in documents() if d["kind"] == "InferenceGraph")
    broken = yaml.safe_load(yaml.safe_dump(graph))
    broken["spec"]["nodes"]["root"]["routerType"] = "Pipeline"
    broken["spec"]["nodes"]["root"]["steps"][0]["retries"] = 3
    errors = schema_errors(broken, crd_schemas)
    assert any("Pipeline" in e for e in errors) and any("retries" in e for e in errors)


# ---------------------------------------------------------------- consistency with the code
def test_one_inference_service_per_stage_with_the_shared_entrypoint() -> None:
    parser = build_parser()
    services = load_services()
    stages = {}
    for service in services:
        command = list(service.command)
        assert command[:3] == ["python", "-m", "kserve_impl.server"], service.name
        args = parser.parse_args(command[3:])
        assert args.model_name == service.name and args.http_port == 8080
        expected = ["--stage", args.stage, *(["--tier", args.tier] if args.tier else []),
                    "--model_name", service.name, "--http_port", "8080"]
        assert command[3:] == expected  # exactly the entrypoint's documented form
        stages.setdefault(args.stage, []).append(args.tier)
    assert sorted(stages) == sorted(STAGES)
    assert sorted(stages["generate"]) == ["large", "small"]


def test_probes_ports_and_scrape_annotations_point_at_the_model() -> None:
    for _, doc in documents():
        if doc["kind"] != "InferenceService":
            continue
        notes = doc["metadata"]["annotations"]
        container = doc["spec"]["predictor"]["containers"][0]
        name = doc["metadata"]["name"]
        assert container["name"] == "kserve-container"
        assert container["ports"][0]["containerPort"] == 8080
        assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{name}",
                                                          "port": 8080}
        assert notes["serving.kserve.io/enable-prometheus-scraping"] == "true"
        assert notes["prometheus.kserve.io/port"] == "8080"
        assert notes["prometheus.kserve.io/path"] == "/metrics"
        predictor = doc["spec"]["predictor"]
        assert predictor["minReplicas"] >= 1 and predictor["maxReplicas"] > predictor[
            "minReplicas"]


def test_generators_request_a_gpu_and_the_cpu_variant_does_not() -> None:
    gpu = {d["metadata"]["name"]: d for p, d in documents() if p.parent == MANIFEST_DIR
           and d["metadata"]["name"].startswith("generator-")}
    cpu = {d["metadata"]["name"]: d for _, d in documents([CPU_FILE])}
    assert sorted(gpu) == sorted(cpu) == ["generator-large", "generator-small"]
    for name in gpu:
        gpu_container = gpu[name]["spec"]["predictor"]["containers"][0]
        cpu_container = cpu[name]["spec"]["predictor"]["containers"][0]
        for kind in ("requests", "limits"):
            assert gpu_container["resources"][kind]["nvidia.com/gpu"] == "1"
            assert "nvidia.com/gpu" not in cpu_container["resources"][kind]
        assert gpu_container["command"] == cpu_container["command"]
        assert gpu_container["args"] == cpu_container["args"]


def test_inference_graph_chains_the_stages_as_the_issue_asks() -> None:
    graph = load_graph(MANIFEST_DIR / "inferencegraph.yaml")
    root, switch = graph.nodes["root"], graph.nodes["generate"]
    assert root.router_type == "Sequence"
    assert [s.name for s in root.steps] == list(STAGES)
    assert all(s.dependency == "Hard" for s in root.steps)
    assert all(s.data == "$response" for s in root.steps[1:])
    assert root.steps[3].node_name == "generate"
    assert switch.router_type == "Switch"
    assert {s.service_name: s.condition for s in switch.steps} == {
        "generator-small": '[@this].#(tier=="small")',
        "generator-large": '[@this].#(tier=="large")'}
    assert graph.service_client_timeout_s and graph.router_timeouts["serverWrite"] >= 60
    assert graph.service_names() == {s.name for s in load_services()}


# ---------------------------------------------------------------- the orchestrated topology
ORCHESTRATED = MANIFEST_DIR / ORCHESTRATED_DIR


def test_the_orchestrated_entry_matches_its_crd_schema(crd_schemas: dict) -> None:
    docs = documents([ORCHESTRATED / "pipeline.yaml"])
    assert [d["metadata"]["name"] for _, d in docs] == ["pipeline"]
    for path, doc in docs:
        assert schema_errors(doc, crd_schemas) == [], path


def test_the_orchestrated_entry_calls_every_stage_service_at_its_predictor() -> None:
    (entry,) = load_services(ORCHESTRATED)
    args = build_parser().parse_args(list(entry.command[3:]))
    assert args.stage == "pipeline" and args.model_name == "pipeline"
    (_, doc), = documents([ORCHESTRATED / "pipeline.yaml"])
    env = {e["name"]: e.get("value") for e in doc["spec"]["predictor"]["containers"][0]["env"]}
    for service in load_services():  # the same stage InferenceServices as the graph's
        assert env[stage_url_env(service.name)] == (
            f"http://{service.name}-predictor{service.predict_path()}")
    kustomization = yaml.safe_load((ORCHESTRATED / "kustomization.yaml").read_text())
    stage_files = {f"../{s.path.name}" for s in load_services()}
    assert stage_files | {"pipeline.yaml", "../settings/gpu.yaml"} == set(
        kustomization["resources"])
    assert "../inferencegraph.yaml" not in kustomization["resources"]

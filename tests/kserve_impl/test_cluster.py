"""`kserve_impl.cluster.ClusterControl` against recorded Kubernetes API responses.

No cluster is reachable here, so the real `kubernetes` client talks to a replay server: a stdlib
HTTP server on a free loopback port that answers each method + path with the next of its
recorded responses (the last one repeats, so a poll can go on) and records every request.
The responses in `fixtures/cluster/*.json` were not captured from a live cluster: they were
written for these tests from the InferenceService CRD schema (/work/shared/crds/kserve) and
KServe's status types as kserve.md 4.4 cites them (`ComponentStatusSpec`, `canaryStatuses`),
around the ISVCs of `manifests/kserve/`. With TWINSERVE_CRD_DIR set, the fixtures' objects and
every patched ISVC are validated against the CRD's openAPIV3Schema; what the API server and
KServe's controller and webhook then do with a patch is not tested here.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client as k8s

from kserve_impl.cluster import ClusterControl
from kserve_impl.cluster.env import revision_label, settings_env
from kserve_impl.cluster.status import deployment_mode
from kserve_impl.manifests import load_services
from shared_pipeline.config import Settings
from shared_pipeline.revision import RevisionChange
from tests.kserve_impl.test_manifests import load_crd_schemas, schema_errors

FIXTURES = Path(__file__).parent / "fixtures" / "cluster"
NS = "twinserve"
ISVC = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices"
PODS = f"/api/v1/namespaces/{NS}/pods"


# ------------------------------------------------------------------ the replay server
class Replay:
    """Serves recorded responses by `METHOD path` in order; records every request."""

    def __init__(self, *fixtures: str) -> None:
        self.routes: dict[str, list[dict[str, Any]]] = {}
        for name in fixtures:
            self.routes.update(json.loads((FIXTURES / name).read_text())["routes"])
        self.served = dict.fromkeys(self.routes, 0)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def answer(self, method: str, raw_path: str, body: bytes, content_type: str | None
               ) -> tuple[int, dict[str, Any]]:
        url = urlsplit(raw_path)
        key = f"{method} {url.path}"
        with self.lock:
            self.requests.append({"method": method, "path": url.path,
                                  "query": parse_qs(url.query), "content_type": content_type,
                                  "body": json.loads(body) if body else None})
            responses = self.routes.get(key)
            if not responses:
                return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404, "message": f"no fixture: {key}"}
            index = min(self.served[key], len(responses) - 1)
            self.served[key] += 1
        return responses[index]["status"], responses[index]["body"]

    def unserved(self) -> dict[str, int]:
        """Recorded responses never sent, per route (0 everywhere: every state was seen)."""
        return {k: len(v) - self.served[k] for k, v in self.routes.items()
                if self.served[k] < len(v)}

    def of(self, method: str, path: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests
                if r["method"] == method and (path is None or r["path"] == path)]


@contextmanager
def replay_server(*fixtures: str, routes: dict | None = None) -> Iterator[tuple[Replay, str]]:
    replay = Replay(*fixtures)
    for key, responses in (routes or {}).items():
        replay.routes[key], replay.served[key] = responses, 0

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = replay.answer(self.command, self.path, body,
                                            self.headers.get("Content-Type"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = handle_any

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def control(*fixtures: str, routes: dict | None = None, **kwargs: Any
            ) -> Iterator[tuple[ClusterControl, Replay]]:
    """A `ClusterControl` whose `kubernetes.client.ApiClient` talks to a replay server."""
    with replay_server(*fixtures, routes=routes) as (replay, url):
        api_client = k8s.ApiClient(k8s.Configuration(host=url))
        kwargs = {"timeout_s": 10.0, "poll_s": 0.01, **kwargs}
        try:
            yield ClusterControl(NS, api_client=api_client, **kwargs), replay
        finally:
            api_client.close()


def recorded(fixture: str, route: str, index: int = 0) -> dict[str, Any]:
    """The body of one recorded response."""
    return json.loads((FIXTURES / fixture).read_text())["routes"][route][index]["body"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies `application/merge-patch+json`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture(scope="module")
def crd_schemas() -> dict:
    folder = os.environ.get("TWINSERVE_CRD_DIR")
    if not folder:
        pytest.skip("TWINSERVE_CRD_DIR is not set: no CRD schemas to validate the patched "
                    "InferenceServices against (CI sets it to ../shared/crds)")
    schemas = load_crd_schemas(Path(folder))
    assert schemas, f"TWINSERVE_CRD_DIR={folder} holds no CustomResourceDefinition"
    return schemas


# ------------------------------------------------------------------ settings and manifests
def test_env_names_are_the_ones_pydantic_settings_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWINSERVE_CONFIG", raising=False)
    base = Settings()
    change = RevisionChange(revision_name="b", prompt_template="Only: {passages}",
                            default_max_tokens=32, delay_ms=250, min_evidence_score=0.5,
                            long_query_words=9, max_answer_chars=300, fail_ratio=0.25)
    env = settings_env(change)
    assert len(env) == len(RevisionChange.model_fields)  # every field has its variable
    assert env["TWINSERVE_REVISION_NAME"] == "b"
    assert env["TWINSERVE_GENERATE__PROMPT_TEMPLATE"] == "Only: {passages}"
    assert env["TWINSERVE_GENERATE__DELAY_MS"] == "250.0"
    assert env["TWINSERVE_ROUTE__LONG_QUERY_WORDS"] == "9"
    assert env["TWINSERVE_POSTPROCESS__FAIL_RATIO"] == "0.25"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # a server started with these variables runs exactly the change
    assert Settings() == change.apply(base)


def test_revision_labels_are_dns_labels() -> None:
    assert revision_label(RevisionChange(revision_name="b")) == "b"
    assert revision_label(RevisionChange(revision_name="2nd-")) == "r2nd"  # a DNS label
    derived = revision_label(RevisionChange(fail_ratio=0.5))
    assert derived.startswith("r") and derived == revision_label(RevisionChange(fail_ratio=0.5))


@pytest.mark.parametrize(("annotation", "mode"), [
    ("Serverless", "Knative"), ("Knative", "Knative"), ("RawDeployment", "Standard"),
    ("Standard", "Standard"), ("rawdeployment", "Standard")])
def test_deployment_mode_normalises_legacy_names(annotation: str, mode: str) -> None:
    isvc = {"metadata": {"name": "x",
                         "annotations": {"serving.kserve.io/deploymentMode": annotation}}}
    assert deployment_mode(isvc) == mode


def test_deployment_mode_falls_back_to_status_and_refuses_modelmesh() -> None:
    assert deployment_mode({"metadata": {"name": "x"},
                            "status": {"deploymentMode": "RawDeployment"}}) == "Standard"
    with pytest.raises(ValueError, match="ModelMesh"):
        deployment_mode({"metadata": {"name": "x", "annotations": {
            "serving.kserve.io/deploymentMode": "ModelMesh"}}})


def test_bad_requests_are_refused_before_any_api_call() -> None:
    with control() as (ctl, replay):
        with pytest.raises(ValueError, match="canary"):
            ctl.rollout(RevisionChange(fail_ratio=0.5), "inplace", 10)
        with pytest.raises(ValueError, match=r"0\.\.100"):
            ctl.rollout(RevisionChange(fail_ratio=0.5), "canary", 120)
        with pytest.raises(ValueError, match="no stage"):
            ctl.rollout(RevisionChange(revision_name="b"), "canary", 10)
        assert ctl.rollback()["detail"] == "nothing rolled out"
        assert ctl.metrics_urls() == []
    assert replay.requests == []


# ------------------------------------------------------------------ Knative
def test_knative_rollout_patches_env_and_percent_of_touched_isvcs_and_waits() -> None:
    change = RevisionChange(revision_name="b", delay_ms=250)
    with control("knative_rollout.json", "pods.json") as (ctl, replay):
        result = ctl.rollout(change, "canary", 10)

        generators = ["generator-large", "generator-small"]  # manifest order
        assert result["revision"] == "b" and result["percent"] == 10
        assert result["services"] == generators
        assert result["revisions"] == {g: f"{g}-predictor-00002" for g in generators}
        # only the generators are touched: generate is the one stage the change names
        assert {r["path"] for r in replay.requests} == {f"{ISVC}/{g}" for g in generators}
        patches = replay.of("PATCH")
        assert [p["path"] for p in patches] == [f"{ISVC}/{g}" for g in generators]
        for name, patch in zip(generators, patches, strict=True):
            assert patch["content_type"] == "application/merge-patch+json"
            before = recorded("knative_rollout.json", f"GET {ISVC}/{name}")
            containers = copy.deepcopy(before["spec"]["predictor"]["containers"])
            containers[0]["env"] += [{"name": "TWINSERVE_REVISION_NAME", "value": "b"},
                                     {"name": "TWINSERVE_GENERATE__DELAY_MS", "value": "250.0"}]
            assert patch["body"] == {"spec": {"predictor": {"canaryTrafficPercent": 10,
                                                            "containers": containers}}}
        # it polled generator-small through a stale status and a not-ready revision
        assert len(replay.of("GET", f"{ISVC}/generator-small")) == 4
        assert len(replay.of("GET", f"{ISVC}/generator-large")) == 2

        # pods of the new Knative revision are counted under the rollout's revision name
        assert ctl.replicas()["generator-small@b"] == 1

        back = ctl.rollback()
        assert back["revision"] == "b" and back["percent"] == 0
        assert back["revisions"] == {g: f"{g}-predictor-00001" for g in generators}
        pins = replay.of("PATCH")[2:]
        assert [p["body"] for p in pins] == [
            {"spec": {"predictor": {"canaryTrafficPercent": 0}}}] * 2
        # every recorded ISVC state was seen, the pinned 100% included
        assert [k for k in replay.unserved() if "/inferenceservices/" in k] == []


# ------------------------------------------------------------------ Standard
def run_standard_rollout_and_rollback() -> tuple[Replay, dict, dict]:
    with control("standard_rollout.json") as (ctl, replay):
        rolled = ctl.rollout(RevisionChange(revision_name="b", fail_ratio=0.5), "canary", 20)
        back = ctl.rollback()
    return replay, rolled, back


def test_standard_rollout_adds_a_named_canary_and_rollback_removes_it() -> None:
    replay, rolled, back = run_standard_rollout_and_rollback()
    path = f"{ISVC}/postprocessor"
    assert rolled["services"] == ["postprocessor"]
    assert rolled["revisions"] == {"postprocessor": "postprocessor-b-predictor"}
    assert {r["path"] for r in replay.requests} == {path}

    stable = recorded("standard_rollout.json", f"GET {path}")["spec"]["predictor"]
    patch = replay.of("PATCH")[0]
    assert patch["content_type"] == "application/merge-patch+json"
    [entry] = patch["body"]["spec"]["canary"]
    assert entry["trafficPercent"] == 20
    canary = entry["predictor"]
    assert canary["name"] == "b"
    # scaling stays with the stable predictor (KServe's webhook refuses it on a canary)
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & set(canary)
    assert {k: v for k, v in canary.items() if k not in ("name", "containers")} == {
        k: v for k, v in stable.items()
        if k not in ("containers", "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")}
    [container] = canary["containers"]
    assert {k: v for k, v in container.items() if k != "env"} == {
        k: v for k, v in stable["containers"][0].items() if k != "env"}
    assert env_of(container) == {**env_of(stable["containers"][0]),
                                 "TWINSERVE_REVISION_NAME": "b",
                                 "TWINSERVE_POSTPROCESS__FAIL_RATIO": "0.5"}

    assert replay.of("PATCH")[1]["body"] == {"spec": {"canary": None}}
    assert back["revision"] == "b" and back["services"] == ["postprocessor"]
    assert replay.unserved() == {}  # it waited through not-ready and stale statuses


def test_standard_patches_give_isvcs_valid_against_the_crd(crd_schemas: dict) -> None:
    replay, _, _ = run_standard_rollout_and_rollback()
    isvc = recorded("standard_rollout.json", f"GET {ISVC}/postprocessor")
    with_canary = merge_patch(isvc, replay.of("PATCH")[0]["body"])
    assert schema_errors(with_canary, crd_schemas) == []
    assert with_canary["spec"]["canary"][0]["predictor"]["name"] == "b"
    rolled_back = merge_patch(with_canary, replay.of("PATCH")[1]["body"])
    assert schema_errors(rolled_back, crd_schemas) == []
    assert rolled_back["spec"] == isvc["spec"]


def test_every_fixture_isvc_and_knative_patch_is_valid_against_the_crd(
        crd_schemas: dict) -> None:
    """The recorded objects (status included) are ones the CRD admits."""
    objects = []
    for path in sorted(FIXTURES.glob("*.json")):
        for responses in json.loads(path.read_text())["routes"].values():
            for response in responses:
                body = response["body"]
                items = body.get("items", [body]) if body.get("kind", "").endswith("List") \
                    else [body]
                objects += [(path.name, o) for o in items if o.get("kind") == "InferenceService"]
    assert len(objects) > 20
    for name, obj in objects:
        assert schema_errors(obj, crd_schemas) == [], (name, obj["metadata"])

    with control("knative_rollout.json") as (ctl, replay):
        ctl.rollout(RevisionChange(revision_name="b", delay_ms=250), "canary", 10)
    isvc = recorded("knative_rollout.json", f"GET {ISVC}/generator-small")
    assert schema_errors(merge_patch(isvc, replay.of("PATCH")[0]["body"]), crd_schemas) == []


def test_a_canary_that_never_gets_ready_times_out_naming_the_isvc() -> None:
    with control("standard_never_ready.json", timeout_s=0.3) as (ctl, replay):
        with pytest.raises(TimeoutError) as info:
            ctl.rollout(RevisionChange(revision_name="b", fail_ratio=0.5), "canary", 20)
        message = str(info.value)
        assert f"InferenceService {NS}/postprocessor" in message
        assert "canary 'b' Ready with 20% in status.canaryStatuses" in message
        assert "b ready=False 20%" in message  # the status it last saw
        assert len(replay.of("GET")) > 3  # it polled until the deadline

        # the failed rollout can still be rolled back (here the status never clears either)
        with pytest.raises(TimeoutError, match=r"canary b gone from status\.canaryStatuses"):
            ctl.rollback()
        assert replay.of("PATCH")[-1]["body"] == {"spec": {"canary": None}}


def test_a_refused_patch_is_raised_naming_the_isvc() -> None:
    """The 400 below is written for this test in the shape of a Kubernetes `Status` from an
    admission webhook; KServe's exact wording is not reproduced."""
    denied = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
              "reason": "BadRequest", "message": "admission webhook denied the request: canary"}
    routes = {f"PATCH {ISVC}/postprocessor": [{"status": 400, "body": denied}]}
    with (control("standard_never_ready.json", routes=routes) as (ctl, _),
          pytest.raises(RuntimeError, match=f"InferenceService {NS}/postprocessor: patch "
                                            f"refused \\(400 .*admission webhook denied")):
        ctl.rollout(RevisionChange(revision_name="b", fail_ratio=0.5), "canary", 20)


def test_from_kubeconfig_uses_the_context_and_its_namespace(tmp_path: Path) -> None:
    with replay_server("pods.json") as (replay, url):
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": url}}],
            "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me",
                                                     "namespace": NS}}]}))
        ctl = ClusterControl.from_kubeconfig(config_file=str(kubeconfig))
        assert ctl.namespace == NS
        assert ctl.replicas()["postprocessor"] == 1
        ctl.api_client.close()
    assert replay.of("GET", PODS)


# ------------------------------------------------------------------ pods
def test_kill_deletes_one_ready_pod_at_once() -> None:
    with control("pods.json") as (ctl, replay):
        assert ctl.kill("postprocessor") == {
            "target": "postprocessor", "pid": None,
            "pod": "postprocessor-predictor-6c8b9d7f5-k2x7q"}  # not the starting/terminating
        assert ctl.kill("postprocessor@b")["pod"] == "postprocessor-b-predictor-7f9c5d8b6-h4jrs"
        with pytest.raises(RuntimeError, match="no Ready pod of generator-large"):
            ctl.kill("generator-large")
    listing = replay.of("GET", PODS)[0]
    assert listing["query"]["labelSelector"] == [
        "serving.kserve.io/inferenceservice in (postprocessor)"]
    deletes = replay.of("DELETE")
    assert [d["path"] for d in deletes] == [
        f"{PODS}/postprocessor-predictor-6c8b9d7f5-k2x7q",
        f"{PODS}/postprocessor-b-predictor-7f9c5d8b6-h4jrs"]
    assert all(d["query"]["gracePeriodSeconds"] == ["0"] for d in deletes)


def test_replicas_counts_ready_pods_per_isvc_and_revision() -> None:
    with control("pods.json") as (ctl, replay):
        counts = ctl.replicas()
        ctl.close()
    assert counts == {
        "retriever": 1, "reranker": 0, "router": 0, "postprocessor": 1, "postprocessor@b": 1,
        "generator-small": 2, "generator-small@generator-small-predictor-00002": 1,
        "generator-large": 0}
    [listing] = replay.of("GET", PODS)
    selector = listing["query"]["labelSelector"][0]
    assert selector.startswith("serving.kserve.io/inferenceservice in (")
    assert all(s.name in selector for s in load_services())
    assert replay.of("DELETE") == [] and replay.of("PATCH") == []


def test_knative_refuses_100_percent_which_would_promote() -> None:
    """KServe reads canaryTrafficPercent 100 as a promotion; nothing would be left to roll
    back to, so the rollout is refused before any patch."""
    with control("knative_rollout.json", "pods.json") as (ctl, replay):
        with pytest.raises(ValueError, match="promotes"):
            ctl.rollout(RevisionChange(revision_name="b", delay_ms=250), "canary", 100)
        assert replay.of("PATCH") == []

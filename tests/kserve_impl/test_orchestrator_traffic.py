"""The orchestrated entry applies the local canary split as the graph runner does: its stage
client resolves each call's URL through the same `TrafficSplit`, and `--local_traffic_split`
serves the same `PUT /local/traffic` the local rollout (`kserve_impl.rollout`) sends.

Fast: a real `PipelineModel` with a real FastAPI app (no stage server is called; the URLs a call
would go to are read from the built requests)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from kserve_impl.graph import TRAFFIC_PATH
from kserve_impl.local import LocalStack
from kserve_impl.orchestrator import PipelineModel
from kserve_impl.orchestrator_client import SERVICES
from kserve_impl.orchestrator_routes import install_traffic_split
from kserve_impl.rollout import KServeControl
from kserve_impl.server import build_parser
from shared_pipeline.config import Settings
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.schemas import PipelineState

STABLE = {s: f"http://127.0.0.1:9/{s}:predict" for s in SERVICES}
CANARY = "http://127.0.0.1:10/postprocessor@b:predict"


def model() -> PipelineModel:
    metrics = PipelineMetrics("kserve", prometheus_instruments(CollectorRegistry()))
    return PipelineModel("pipeline", Settings(), metrics, urls=dict(STABLE))


def sent_to(m: PipelineModel, service: str) -> str:
    state = PipelineState.model_validate({"request_id": "r", "revision": "a", "query": "q",
                                          "request": {"messages": [
                                              {"role": "user", "content": "q"}]}})
    return str(m.client._request(service, state, {}).url)


def test_the_rollouts_put_moves_the_orchestrators_calls_to_the_canary_and_back() -> None:
    m = model()
    app = FastAPI()
    install_traffic_split(app, m)
    client = TestClient(app)
    assert sent_to(m, "postprocessor") == STABLE["postprocessor"]
    r = client.put(TRAFFIC_PATH, json={"service": "postprocessor", "canary_url": CANARY,
                                       "percent": 100})
    assert r.status_code == 200 and r.json() == {
        "postprocessor": {"canary_url": CANARY, "percent": 100}}
    assert {sent_to(m, "postprocessor") for _ in range(20)} == {CANARY}
    assert sent_to(m, "generator-small") == STABLE["generator-small"]  # untouched services
    client.put(TRAFFIC_PATH, json={"service": "postprocessor", "canary_url": CANARY,
                                   "percent": 0})  # canaryTrafficPercent: 0 rolls back
    assert {sent_to(m, "postprocessor") for _ in range(20)} == {STABLE["postprocessor"]}
    bad = client.put(TRAFFIC_PATH, json={"service": "nope", "percent": 50})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]


def test_the_split_endpoint_is_opt_in() -> None:
    """On a cluster Knative splits traffic: the entry serves no control endpoint unless local
    mode asks for it (LocalStack passes the flag)."""
    base = ["--stage", "pipeline", "--model_name", "pipeline"]
    assert build_parser().parse_args(base).local_traffic_split is False
    assert build_parser().parse_args([*base, "--local_traffic_split"]).local_traffic_split


def test_the_experiments_timeline_reads_the_orchestrating_entrys_metrics_too() -> None:
    """The entry is a model server that counts what it answers itself (refusals relayed,
    disconnects); the graph runner serves no /metrics. Nothing is started: no servers yet."""
    for topology, expected in (("graph", []), ("orchestrated", ["http://127.0.0.1:8123/metrics"])):
        stack = LocalStack(Settings(), 8123, topology=topology)
        assert KServeControl(stack, Settings()).metrics_urls() == expected

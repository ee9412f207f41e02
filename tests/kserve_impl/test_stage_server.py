"""One real stage server (`python -m kserve_impl.server`), the way a pod runs it.

The route stage loads no model, so it shows the server contract cheaply: readiness on the model
endpoint, the state in and out over v1 `:predict`, errors in the OpenAI shape with their status,
and the metrics (pipeline_* and KServe's own request_*_seconds) on `/metrics`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from kserve_impl.server_process import ServerProcess
from shared_pipeline.config import Settings
from shared_pipeline.processes import free_port
from shared_pipeline.schemas import Document, PipelineState, parse_chat_request
from tests.kserve_impl.helpers import metric

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def router_server(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log_dir = tmp_path_factory.mktemp("route-server")
    server = ServerProcess("router", [sys.executable, "-m", "kserve_impl.server", "--stage",
                                      "route", "--model_name", "router", "--http_port",
                                      str(port)],
                           port, "/v1/models/router", log_dir / "router.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINSERVE_")}
    server.start(env)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client() as client:
            while not server.is_ready(client):
                if server.exit_code() is not None or time.monotonic() > deadline:
                    raise server.failure("did not become ready")
                time.sleep(0.2)
        yield server.url
    finally:
        server.stop()
        server.wait_stopped(time.monotonic() + 15)


def state_json(question: str, best_score: float) -> dict:
    request = parse_chat_request({"messages": [{"role": "user", "content": question}]},
                                 Settings())
    state = PipelineState.start(request, "rid-1")
    state.reranked = [Document(id="d1", title="t", text="x", score=best_score)]
    return state.model_dump(mode="json")


def test_the_route_server_extends_the_state_with_the_tier(router_server: str) -> None:
    url = router_server + "/v1/models/router:predict"
    small = httpx.post(url, json=state_json("What is a list?", 0.9))
    weak = httpx.post(url, json=state_json("What is a list?", 0.1))
    assert small.status_code == 200 and weak.status_code == 200
    assert small.json()["tier"] == "small"  # top-level: what the Switch conditions read
    assert weak.json()["tier"] == "large" and "weak evidence" in weak.json()["tier_reason"]
    assert [t["stage"] for t in small.json()["timings"]] == ["route"]
    assert small.json()["request_id"] == "rid-1"


def test_bad_bodies_get_openai_errors_and_are_counted(router_server: str) -> None:
    url = router_server + "/v1/models/router:predict"
    before = httpx.get(router_server + "/metrics").text
    not_json = httpx.post(url, content=b"{oops", headers={"content-type": "application/json"})
    not_state = httpx.post(url, json={"request": {"messages": "hello"}})
    assert not_json.status_code == 400
    assert not_json.json()["error"]["message"].startswith("request body is not valid JSON")
    assert not_state.status_code == 400
    error = not_state.json()["error"]
    assert error["param"] == "request.messages" and error["type"] == "invalid_request_error"
    after = httpx.get(router_server + "/metrics").text
    labels = {"stack": "kserve", "tier": "none", "status": "client_error"}
    assert metric(after, "pipeline_requests_total", **labels) - metric(
        before, "pipeline_requests_total", **labels) == 2
    assert httpx.get(router_server + "/v1/models/router").json() == {"name": "router",
                                                                     "ready": True}


def test_metrics_show_the_contract_and_kserve_latency(router_server: str) -> None:
    httpx.post(router_server + "/v1/models/router:predict", json=state_json("What is a set?", 0.9))
    text = httpx.get(router_server + "/metrics").text
    assert metric(text, "pipeline_stage_seconds_count", stack="kserve", stage="route") >= 1
    assert metric(text, "pipeline_revision_info", stack="kserve", stage="route") == 1
    assert metric(text, "request_predict_seconds_count", model_name="router") >= 1

"""The local InferenceGraph runner on real HTTP services: each router behaviour of kserve.md 3.2.

The services are a small Starlette app served on loopback (echo, fail with a status, sleep), the
runner is `kserve_impl.graph.build_app` served by uvicorn; every call crosses real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kserve_impl.graph import (
    NO_ROUTE_MATCHED,
    ROUTER_ERROR,
    TRAFFIC_PATH,
    GraphRunner,
    GraphSpec,
    build_app,
    load_graph,
)
from kserve_impl.manifests import MANIFEST_DIR
from shared_pipeline.processes import free_port
from tests.kserve_impl.helpers import serve_in_thread

CALLS: list[dict[str, Any]] = []


async def echo(request: Request) -> JSONResponse:
    """Answer the input JSON with this service's tag appended to `seen`."""
    body = await request.body()
    tag = request.path_params["tag"]
    CALLS.append({"tag": tag, "body": body, "headers": dict(request.headers)})
    try:
        data = json.loads(body)
    except ValueError:
        data = {"raw": body.decode(errors="replace")}
    if not isinstance(data, dict):
        data = {"value": data}
    data["seen"] = [*data.get("seen", []), tag]
    return JSONResponse(data)


async def fail(request: Request) -> JSONResponse:
    code = int(request.path_params["code"])
    CALLS.append({"tag": f"fail{code}", "body": await request.body()})
    return JSONResponse({"error": {"message": f"failed with {code}", "code": code}},
                        status_code=code)


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.path_params["seconds"]))
    CALLS.append({"tag": "slow"})
    return JSONResponse({"slow": True, "seen": ["slow"]})


async def model_ready(request: Request) -> JSONResponse:
    """KServe's v1 model-ready answer (`GET /v1/models/<name>`)."""
    return JSONResponse({"name": request.path_params["tag"], "ready": True})


async def predictions(request: Request) -> JSONResponse:
    CALLS.append({"tag": "predictions", "body": await request.body()})
    return JSONResponse({"predictions": [1, 2], "other": "dropped"})


BACKEND = Starlette(routes=[
    Route("/echo/{tag}", echo, methods=["POST"]),
    Route("/fail/{code:int}", fail, methods=["POST"]),
    Route("/slow/{seconds}", slow, methods=["POST"]),
    Route("/predictions", predictions, methods=["POST"]),
    Route("/ready/{tag}", model_ready, methods=["GET"]),
])


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    with serve_in_thread(BACKEND) as url:
        yield url


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLS.clear()


def services(backend: str) -> dict[str, str]:
    names = ["a", "b", "c", "retriever", "reranker", "router", "generator-small",
             "generator-large", "postprocessor"]
    found = {name: f"{backend}/echo/{name}" for name in names}
    found.update({"fail400": f"{backend}/fail/400", "fail503": f"{backend}/fail/503",
                  "slow3": f"{backend}/slow/3", "slow1": f"{backend}/slow/1",
                  "predictions": f"{backend}/predictions",
                  "unreachable": f"http://127.0.0.1:{free_port()}/v1/models/x:predict"})
    return found


def manifest(nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
            "metadata": {"name": "test"}, "spec": {"nodes": nodes, **spec}}


def sequence(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"root": {"routerType": "Sequence", "steps": list(steps)}}


@contextmanager
def graph_runner(graph: GraphSpec | dict[str, Any], backend: str,
                 propagate: tuple[str, ...] = ()) -> Iterator[str]:
    spec = graph if isinstance(graph, GraphSpec) else GraphSpec.from_manifest(graph)
    with serve_in_thread(build_app(GraphRunner(spec, services(backend), propagate))) as url:
        yield url


def tags() -> list[str]:
    return [c["tag"] for c in CALLS]


def test_sequence_passes_each_response_on_with_dollar_response(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a", "data": "$request"},
                              {"serviceName": "b", "data": "$response"},
                              {"serviceName": "c", "data": "$response"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={"q": 1})
    assert r.status_code == 200
    assert r.json() == {"q": 1, "seen": ["a", "b", "c"]}
    assert json.loads(CALLS[1]["body"]) == {"q": 1, "seen": ["a"]}  # b got a's response


def test_sequence_without_dollar_response_sends_the_original_input(backend: str) -> None:
    # Only the literal "$response" is interpreted; anything else sends the node input.
    graph = manifest(sequence({"serviceName": "a"},
                              {"serviceName": "b", "data": "$request"},
                              {"serviceName": "c", "data": "$response.predictions"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={"q": 1})
    assert r.json() == {"q": 1, "seen": ["c"]}
    assert all(json.loads(c["body"]) == {"q": 1} for c in CALLS)


def test_the_pipeline_graph_switches_on_tier(backend: str) -> None:
    """The shipped inferencegraph.yaml: Sequence of five, the Switch picks the tier's generator."""
    graph = load_graph(MANIFEST_DIR / "inferencegraph.yaml")
    with graph_runner(graph, backend) as url:
        small = httpx.post(url + "/v1/chat/completions", json={"tier": "small"}).json()
        large = httpx.post(url + "/v1/chat/completions", json={"tier": "large"}).json()
    assert small["seen"] == ["retriever", "reranker", "router", "generator-small",
                             "postprocessor"]
    assert large["seen"] == ["retriever", "reranker", "router", "generator-large",
                             "postprocessor"]


def test_switch_without_a_match_answers_404_with_the_router_error(backend: str) -> None:
    graph = manifest({"root": {"routerType": "Switch", "steps": [
        {"serviceName": "a", "condition": '[@this].#(tier=="small")'},
        {"serviceName": "b", "condition": '[@this].#(tier=="large")'}]}})
    with graph_runner(graph, backend) as url:
        matched = httpx.post(url, json={"tier": "large"})
        missed = httpx.post(url, json={"tier": "medium"})
        not_json = httpx.post(url, content=b"{not json")
    assert matched.status_code == 200 and matched.json()["seen"] == ["b"]
    for r in (missed, not_json):
        assert r.status_code == 404
        assert r.json() == {"error": ROUTER_ERROR, "cause": NO_ROUTE_MATCHED}
    assert tags() == ["b"]


def test_switch_nested_in_a_sequence_fails_the_sequence_with_500(backend: str) -> None:
    # The router wraps a nested node's error into a 500 with the same cause (executeStep err).
    graph = load_graph(MANIFEST_DIR / "inferencegraph.yaml")
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={"tier": "medium"})
    assert r.status_code == 500
    assert r.json() == {"error": ROUTER_ERROR, "cause": NO_ROUTE_MATCHED}
    assert tags() == ["retriever", "reranker", "router"]  # postprocessor never called


def test_hard_dependency_failure_stops_the_sequence_with_its_status_and_body(backend) -> None:
    graph = manifest(sequence({"serviceName": "a"},
                              {"serviceName": "fail503", "data": "$response",
                               "dependency": "Hard"},
                              {"serviceName": "c", "data": "$response"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={})
    assert r.status_code == 503
    assert r.json() == {"error": {"message": "failed with 503", "code": 503}}
    assert tags() == ["a", "fail503"]


def test_soft_dependency_failure_continues_with_the_error_body(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"},
                              {"serviceName": "fail400", "data": "$response"},  # Soft default
                              {"serviceName": "c", "data": "$response"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={})
    assert r.status_code == 200
    assert r.json() == {"error": {"message": "failed with 400", "code": 400}, "seen": ["c"]}
    assert tags() == ["a", "fail400", "c"]


def test_last_soft_step_status_is_the_node_status(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"}, {"serviceName": "fail400"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={})
    assert r.status_code == 400


def test_step_call_is_bounded_by_router_timeouts_service_client(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"},
                              {"serviceName": "slow3", "dependency": "Hard"},
                              {"serviceName": "c"}), routerTimeouts={"serviceClient": 1})
    with graph_runner(graph, backend) as url:
        started = time.perf_counter()
        r = httpx.post(url, json={}, timeout=30)
        elapsed = time.perf_counter() - started
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == ROUTER_ERROR
    assert "Client.Timeout exceeded" in body["cause"] and "/slow/3" in body["cause"]
    # The timeout cannot fire early; how late it fires depends on the machine (printed only).
    print(f"serviceClient timeout of 1 s answered after {elapsed:.2f} s")
    assert elapsed >= 0.9
    assert "c" not in tags()


def test_without_service_client_timeout_a_slow_step_is_awaited(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "slow1"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={}, timeout=30)
    assert r.status_code == 200 and r.json()["slow"] is True


def test_an_unreachable_service_is_a_500_with_the_router_error(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"}, {"serviceName": "unreachable"}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={})
    assert r.status_code == 500
    assert r.json()["error"] == ROUTER_ERROR
    assert r.json()["cause"].startswith('Post "http://127.0.0.1:')
    assert '/v1/models/x:predict"' in r.json()["cause"]


def test_condition_on_a_sequence_step(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"},
                              {"serviceName": "b", "data": "$response",
                               "condition": '[@this].#(go==true)'}))
    first = manifest(sequence({"serviceName": "a", "condition": '[@this].#(go==true)'}))
    with graph_runner(graph, backend) as url:
        stopped = httpx.post(url, json={"go": False})
        went = httpx.post(url, json={"go": True})
    with graph_runner(first, backend) as url:
        invalid = httpx.post(url, json={})
    assert stopped.status_code == 200 and stopped.json()["seen"] == ["a"]
    assert went.json()["seen"] == ["a", "b"]
    assert invalid.status_code == 500 and invalid.json()["cause"] == "invalid response"


def test_chat_paths_and_only_propagated_headers(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "a"}))
    with graph_runner(graph, backend, propagate=("X-Request-Id",)) as url:
        paths = [httpx.post(url + p, json={}, headers={"x-request-id": "rid-1",
                                                        "x-secret": "s"})
                 for p in ("/", "/v1/chat/completions")]
        ready = httpx.get(url + "/readyz")
    assert [r.status_code for r in paths] == [200, 200]
    assert ready.status_code == 200
    headers = CALLS[0]["headers"]
    assert headers["x-request-id"] == "rid-1"
    assert "x-secret" not in headers
    assert headers["content-type"] == "application/json"


def test_unknown_path_is_404_and_wrong_method_405_in_the_openai_shape(backend: str) -> None:
    """Unlike the router pod (every path runs the graph), the local runner serves the OpenAI
    surface every stack serves (DESIGN.md): anything else is refused as OpenAI servers do."""
    with graph_runner(manifest(sequence({"serviceName": "a"})), backend) as url:
        missing = httpx.post(url + "/any/thing", json={})
        wrong = httpx.get(url + "/v1/chat/completions")
        models = httpx.get(url + "/v1/models")
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert missing.json()["error"]["message"] == "Invalid URL (POST /any/thing)"
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert CALLS == []  # neither reached a step
    assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["pipeline"]


def test_completions_go_through_the_graph_as_the_chat_request_they_mean(backend: str) -> None:
    with graph_runner(manifest(sequence({"serviceName": "a"})), backend) as url:
        sent = httpx.post(url + "/v1/completions", json={"model": "pipeline", "prompt": "Why?",
                                                          "max_tokens": 3, "echo": False})
        refused = httpx.post(url + "/v1/completions", json={"prompt": "Why?", "echo": True})
    assert sent.status_code == 200
    assert json.loads(CALLS[0]["body"]) == {"model": "pipeline", "max_tokens": 3, "messages": [
        {"role": "user", "content": "Why?"}]}
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "echo"
    assert len(CALLS) == 1  # the refusal never reached a step


def test_health_asks_every_step_server(backend: str) -> None:
    spec = GraphSpec.from_manifest(manifest(sequence({"serviceName": "retriever"},
                                                     {"serviceName": "reranker"})))
    up = {"retriever": f"{backend}/ready/retriever", "reranker": f"{backend}/ready/reranker"}
    down = {**up, "reranker": f"http://127.0.0.1:{free_port()}/v1/models/reranker:predict"}
    answers = []
    for found in (up, down):
        with serve_in_thread(build_app(GraphRunner(spec, found))) as url:
            answers.append(httpx.get(url + "/health"))
    ok, unavailable = answers
    print(ok.json(), unavailable.json(), sep="\n")
    assert ok.status_code == 200 and ok.json()["stages"] == {"retrieve": "ready",
                                                             "rerank": "ready"}
    assert unavailable.status_code == 503 and unavailable.json()["stages"]["retrieve"] == "ready"
    assert "'rerank'" in unavailable.json()["error"]["message"]


def test_map_predictions_to_instances(backend: str) -> None:
    graph = manifest(sequence({"serviceName": "predictions"},
                              {"serviceName": "a", "data": "$response",
                               "mapPredictionsToInstances": True}))
    with graph_runner(graph, backend) as url:
        r = httpx.post(url, json={})
    assert r.json() == {"instances": [1, 2], "seen": ["a"]}


def test_the_traffic_split_sends_a_canarys_share_and_rolls_back(backend: str) -> None:
    """`/local/traffic`, the stand-in for Knative's canaryTrafficPercent, per step call."""
    graph = manifest(sequence({"serviceName": "a"}))
    with graph_runner(graph, backend) as url:
        canary = {"service": "a", "canary_url": f"{backend}/echo/canary", "percent": 100}
        assert httpx.put(url + TRAFFIC_PATH, json=canary).json() == {
            "a": {"canary_url": f"{backend}/echo/canary", "percent": 100}}
        rolled = httpx.post(url, json={}).json()
        httpx.put(url + TRAFFIC_PATH, json={**canary, "percent": 0})
        back = httpx.post(url, json={}).json()
        unknown = httpx.put(url + TRAFFIC_PATH, json={**canary, "service": "nowhere"})
        bad = httpx.put(url + TRAFFIC_PATH, json={**canary, "percent": 120})
    assert rolled["seen"] == ["canary"] and back["seen"] == ["a"]
    assert unknown.status_code == 400 and "nowhere" in unknown.json()["error"]
    assert bad.status_code == 400 and "0..100" in bad.json()["error"]


def test_a_graph_naming_a_service_without_a_url_is_refused() -> None:
    spec = GraphSpec.from_manifest(manifest(sequence({"serviceName": "nowhere"})))
    with pytest.raises(ValueError, match="nowhere"):
        GraphRunner(spec, {})
    with pytest.raises(ValueError, match="root"):
        GraphSpec.from_manifest(manifest({"other": {"routerType": "Sequence", "steps": []}}))


@pytest.mark.parametrize(("node", "refused"), [
    ({"routerType": "Splitter", "steps": [{"serviceName": "a", "weight": 100}]}, "Splitter"),
    ({"routerType": "Ensemble", "steps": [{"serviceName": "a"}]}, "Ensemble"),
    ({"routerType": "Switch", "steps": [{"serviceName": "a", "condition": "tier"}]}, "'tier'"),
])
def test_node_types_and_conditions_the_manifests_do_not_use_are_refused_at_load(
        node: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValueError, match=f"node 'root'.*{refused}"):
        GraphSpec.from_manifest(manifest({"root": node}))

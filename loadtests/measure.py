"""What one request measured: pure helpers the locustfile uses (importable without locust,
whose import patches the standard library with gevent)."""

from __future__ import annotations

import json
import re


def failure_reason(status: int, body: str) -> tuple[str, bool]:
    """(`reason`, `rejected`) for a non-2xx answer, from the OpenAI error body when there is one.

    Digits in the message become `N` so locust groups one cause into one failure row (the raw
    record keeps the message as sent).
    """
    message = body.strip()[:200]
    try:
        error = json.loads(body).get("error")
        if isinstance(error, dict):
            message = str(error.get("message", message))
        elif error:
            message = str(error)
        else:
            message = str(json.loads(body).get("detail", message))
    except (ValueError, AttributeError):
        pass
    message = re.sub(r"\d+", "N", message)[:160]
    rejected = status in (429, 503)
    return (f"rejected {status}: {message}" if rejected else f"{status} {message}"), rejected


def retry_after(header: str | None, body: str) -> tuple[str | None, str | None]:
    """(seconds, where it came from) of a refusal's retry hint: the `Retry-After` header, else
    the error body's `retry_after_s` (what survives KServe's InferenceGraph router, which drops
    step response headers); (None, None) when the refusal gave none."""
    if header:
        return header, "header"
    try:
        value = json.loads(body)["error"]["retry_after_s"]
    except (ValueError, KeyError, TypeError):
        return None, None
    return (str(value), "body") if value is not None else (None, None)


def tpot_ms(e2e_ms: float, ttft_ms: float | None, tokens: int) -> float | None:
    """Time per output token after the first, as vLLM's benchmark defines it."""
    if ttft_ms is None or tokens < 2:
        return None
    return (e2e_ms - ttft_ms) / (tokens - 1)

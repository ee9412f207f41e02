"""Asking the pipeline: in process, or over HTTP with the openai client against either stack.

Every path returns the same thing, the OpenAI `chat.completion` dict with its `pipeline`
extension, so the CLI prints one shape whichever stack answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from shared_pipeline.config import Settings
from shared_pipeline.request_body import build_body
from shared_pipeline.schemas import parse_chat_request

# `build_body` lives in shared_pipeline (the experiments use it too); the CLI imports it here.
__all__ = ["DEFAULT_URLS", "ask", "ask_http", "ask_inprocess", "build_body"]

# Where `twinserve up` serves by default, per stack.
DEFAULT_URLS = {"kserve": "http://127.0.0.1:8080", "rayserve": "http://127.0.0.1:8000"}


async def ask_inprocess(settings: Settings, body: dict[str, Any], engine: str | None = None,
                        on_token: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the pipeline in this process (loads the models, answers, stops the engine)."""
    from shared_pipeline.pipeline import InProcessPipeline

    if engine:
        settings = settings.model_copy(
            update={"generate": settings.generate.model_copy(update={"engine": engine})})
    request = parse_chat_request(body, settings)
    pipeline = InProcessPipeline(settings)
    await pipeline.start()
    try:
        if not request.stream:
            return await pipeline.answer(request)
        return _merge_chunks([c async for c in _tee(pipeline.stream(request), on_token)])
    finally:
        await pipeline.stop()


async def _tee(chunks, on_token):
    async for chunk in chunks:
        if on_token:
            for choice in chunk.get("choices", []):
                if choice["delta"].get("content"):
                    on_token(choice["delta"]["content"])
        yield chunk


def _merge_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold a stream's chunks into the `chat.completion` a non-streaming call would return."""
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    last = chunks[-1]
    return {"id": last["id"], "object": "chat.completion", "created": last["created"],
            "model": last["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": last["choices"][0]["finish_reason"]}],
            "usage": last.get("usage"), "pipeline": last.get("pipeline")}


def ask_http(url: str, body: dict[str, Any], on_token: Callable[[str], None] | None = None,
             timeout_s: float = 300.0) -> dict[str, Any]:
    """Ask a running stack through the openai client (`<url>/v1`)."""
    from openai import OpenAI

    client = OpenAI(base_url=url.rstrip("/") + "/v1", api_key="unused", timeout=timeout_s,
                    max_retries=0)
    extra = {"pipeline": body["pipeline"]} if "pipeline" in body else None
    kwargs = {"model": body["model"], "messages": body["messages"], "stream": body["stream"],
              "temperature": body.get("temperature", 0.0), "extra_body": extra}
    if "max_tokens" in body:
        kwargs["max_tokens"] = body["max_tokens"]
    if not body["stream"]:
        return client.chat.completions.create(**kwargs).model_dump()
    chunks = []
    for chunk in client.chat.completions.create(**kwargs):
        data = chunk.model_dump()
        if on_token and data["choices"] and data["choices"][0]["delta"].get("content"):
            on_token(data["choices"][0]["delta"]["content"])
        chunks.append(data)
    return _merge_chunks(chunks)


def ask(stack: str, settings: Settings, body: dict[str, Any], url: str | None = None,
        engine: str | None = None,
        on_token: Callable[[str], None] | None = None) -> tuple[dict[str, Any], float]:
    """Answer `body` on `stack`; returns the completion and the wall time in seconds."""
    started = time.perf_counter()
    if stack == "inprocess":
        result = asyncio.run(ask_inprocess(settings, body, engine, on_token))
    else:
        result = ask_http(url or DEFAULT_URLS[stack], body, on_token)
    return result, time.perf_counter() - started

"""A streamed answer as server-sent events, the same on every stack that streams.

The Ray ingress and the in-process server both turn the generator's text deltas into
`chat.completion.chunk`s here (`content_chunks`: each delta cleaned by `PostProcessor.clean_delta`
against what was already sent), end a good stream with `final_chunk` and `data: [DONE]`, and end
a failed one with `sse_failure`: one OpenAI-shaped error event, then `data: [DONE]`, so a client
reads a failure the same way whichever stack streamed it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from shared_pipeline.schemas import PipelineState, RequestError, chat_chunk
from shared_pipeline.stages.postprocess import PostProcessor

DONE = "[DONE]"


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event line, as OpenAI servers frame them."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def sse_failure(error: RequestError) -> str:
    """How a stream whose headers are already sent ends on failure: the error event, [DONE]."""
    return sse(error.to_body()) + sse(DONE)


async def content_chunks(state: PipelineState, cleaner: PostProcessor,
                         texts: AsyncIterable[str]) -> AsyncIterator[dict[str, Any]]:
    """The assistant role chunk, then one content chunk per delta left non-empty by cleaning."""
    yield chat_chunk(state, {"role": "assistant", "content": ""})
    emitted = 0
    async for text in texts:
        piece = cleaner.clean_delta(emitted, text)
        if piece:
            emitted += len(piece)
            yield chat_chunk(state, {"content": piece})


async def batched(texts: AsyncIterable[str], interval_s: float) -> AsyncIterator[str]:
    """The deltas joined so that at most one is sent per `interval_s`: the first at once (the
    time to first token is untouched), a later one held until `interval_s` has passed since the
    last send, what is held at the end flushed. No timer: a held delta goes with the first delta
    that arrives once the interval is over (or at the end), so it waits at most the interval or
    one inter-token gap, whichever is longer; nothing is dropped or reordered. `interval_s` <= 0
    passes every delta on.

    The stacks' generators wrap their streams in this (`generate.stream_batch_ms`): fewer
    messages across each serving boundary, as Ray Serve LLM's own stream batching does."""
    if interval_s <= 0:
        async for text in texts:
            yield text
        return
    held: list[str] = []
    sent_at = -math.inf
    async for text in texts:
        held.append(text)
        if time.monotonic() - sent_at >= interval_s:
            yield "".join(held)
            held.clear()
            sent_at = time.monotonic()
    if held:
        yield "".join(held)


def final_chunk(state: PipelineState) -> dict[str, Any]:
    """The last chunk: finish reason, usage and the `pipeline` extension of the finished state."""
    finish = (state.completion.finish_reason if state.completion else None) or "stop"
    return chat_chunk(state, {}, finish_reason=finish, final=True)

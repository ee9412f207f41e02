"""A streamed answer as server-sent events, the same on every stack that streams.

The Ray ingress and the in-process server both turn the generator's text deltas into
`chat.completion.chunk`s here (`content_chunks`: each delta cleaned by `PostProcessor.clean_delta`
against what was already sent), end a good stream with `final_chunk` and `data: [DONE]`, and end
a failed one with `sse_failure`: one OpenAI-shaped error event, then `data: [DONE]`, so a client
reads a failure the same way whichever stack streamed it.
"""

from __future__ import annotations

import json
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


def final_chunk(state: PipelineState) -> dict[str, Any]:
    """The last chunk: finish reason, usage and the `pipeline` extension of the finished state."""
    finish = (state.completion.finish_reason if state.completion else None) or "stop"
    return chat_chunk(state, {}, finish_reason=finish, final=True)

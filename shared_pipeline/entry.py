"""Where a request enters the pipeline, the same on every stack: body -> validated state.

KServe's retriever (the graph's first step), the Ray ingress and the in-process server each
receive the OpenAI body and must refuse the same bad input with the same answer, then start the
same `PipelineState` stamped with the revision that serves it. Written once here so the three
entries cannot drift.
"""

from __future__ import annotations

import json
from typing import Any

from shared_pipeline.completions import parse_completion_request
from shared_pipeline.config import Settings
from shared_pipeline.schemas import (
    ChatCompletionRequest,
    PipelineState,
    RequestError,
    parse_chat_request,
)

NOT_JSON = "request body is not valid JSON"


def read_json(body: bytes) -> Any:
    """The decoded body; one that is not JSON is a 400 (KServe's data plane raises the same)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, NOT_JSON) from None


def begin(request: ChatCompletionRequest, revision: str,
          request_id: str | None = None) -> PipelineState:
    """The state a validated request starts with (a new id unless the client sent one)."""
    state = PipelineState.start(request, request_id)
    state.revision = revision
    return state


def enter(payload: Any, settings: Settings, revision: str,
          request_id: str | None = None) -> PipelineState:
    """Validate a decoded body and start its state; raise `RequestError` (400/404) if refused."""
    return begin(parse_chat_request(payload, settings), revision, request_id)


def enter_completion(payload: Any, settings: Settings, revision: str,
                     request_id: str | None = None) -> PipelineState:
    """`enter` for a `/v1/completions` body: its prompt is the question (`completions.py`)."""
    return begin(parse_completion_request(payload, settings), revision, request_id)

"""The request a user sends, the state that travels between stages, and the answer (DESIGN.md).

Both stacks import these: KServe passes `PipelineState` as the JSON body of every InferenceGraph
step, Ray passes it between deployments. One definition keeps the stage code identical.
"""

from __future__ import annotations

import time
import uuid
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, Field, ValidationError

# The request model lives in chat_request.py; importers keep reading it from here.
from shared_pipeline.chat_request import PIPELINE_MODEL, ChatCompletionRequest, error_param
from shared_pipeline.config import Settings, Tier

STAGES = ("retrieve", "rerank", "route", "generate", "postprocess")


class RequestError(Exception):
    """A request the pipeline refuses, with the HTTP status and the field at fault.

    Both stacks turn it into the same OpenAI-style body (`to_body`), so a client sees one error
    shape whichever serving layer answered.
    """

    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error", retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind
        self.retry_after_s = retry_after_s  # set on overload refusals (503)

    def to_body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param,
                 "code": self.status}
        if self.retry_after_s is not None:
            # Also in the body: KServe's InferenceGraph router drops step response headers, so
            # through the graph the `Retry-After` header is lost but this field arrives.
            error["retry_after_s"] = self.retry_after_s
        return {"error": error}


def parse_chat_request(payload: Any, settings: Settings) -> ChatCompletionRequest:
    """Validate a decoded JSON body; raise `RequestError` (400/404) naming the field at fault."""
    if not isinstance(payload, dict):
        raise RequestError(400, f"request body must be a JSON object, not {type(payload).__name__}")
    try:
        request = ChatCompletionRequest.model_validate(
            payload,
            context={"max_model_len": settings.generate.max_model_len,
                     "max_input_chars": settings.max_input_chars},
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        param = error_param(err["loc"])
        raise RequestError(400, f"{param}: {err['msg']}" if param else err["msg"], param) from None
    if request.model != PIPELINE_MODEL:
        raise RequestError(404, f"model '{request.model}' does not exist; this server serves "
                                f"'{PIPELINE_MODEL}'", "model", kind="model_not_found")
    return request


# ---------------------------------------------------------------- the state between stages
class Document(BaseModel):
    id: str
    title: str
    text: str
    score: float = 0.0
    scores: dict[str, float] = {}  # per-retriever scores/ranks, kept for explanation


class StageStamp(BaseModel):
    stage: str
    start: float  # wall clock (time.time()), comparable across processes on one host
    end: float | None = None
    revision: str = ""  # the revision of the server/replica that ran this stage


class Completion(BaseModel):
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    ttft_s: float | None = None
    engine: str | None = None
    model: str | None = None  # the served model name of the tier that answered


class Citation(BaseModel):
    id: str
    title: str
    score: float


class Answer(BaseModel):
    text: str
    citations: list[Citation] = []
    cites_nothing: bool = False
    truncated: bool = False


class PipelineState(BaseModel):
    """Everything a request has gathered so far; each stage returns it extended."""

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    revision: str = ""
    created: int = Field(default_factory=lambda: int(time.time()))
    request: ChatCompletionRequest
    query: str = ""
    retrieved: list[Document] = []
    reranked: list[Document] = []
    tier: Tier | None = None
    tier_reason: str = ""
    prompt: str = ""
    completion: Completion | None = None
    answer: Answer | None = None
    timings: list[StageStamp] = []

    @classmethod
    def start(cls, request: ChatCompletionRequest, request_id: str | None = None) -> PipelineState:
        state = cls(request=request, query=request.query)
        if request_id:
            state.request_id = request_id
        return state

    def stage_ms(self) -> dict[str, float]:
        return {s.stage: round((s.end - s.start) * 1000, 2) for s in self.timings if s.end}

    def hop_ms(self) -> float:
        """Time spent between stages (transport, routing, queueing): entry minus previous exit."""
        stamps = sorted((s for s in self.timings if s.end is not None), key=lambda s: s.start)
        return round(sum(max(0.0, b.start - a.end) for a, b in pairwise(stamps))
                     * 1000, 2)

    def stage_revisions(self) -> dict[str, str]:
        """stage -> the revision that ran it (stages whose server reported one)."""
        return {s.stage: s.revision for s in self.timings if s.revision}

    def served_revision(self) -> str:
        """The revision that answered: one name when every stage ran the same revision, else
        the distinct ones joined by `+` (a request that crossed a rollout mid-pipeline)."""
        revisions = sorted(set(self.stage_revisions().values()) or {self.revision} - {""})
        return "+".join(revisions)

    def last_exit(self) -> float | None:
        ends = [s.end for s in self.timings if s.end is not None]
        return max(ends) if ends else None


# ---------------------------------------------------------------- the answer (OpenAI shapes)
def pipeline_extension(state: PipelineState) -> dict[str, Any]:
    answer = state.answer
    return {
        "request_id": state.request_id,
        "revision": state.served_revision(),
        "revisions": state.stage_revisions(),
        "tier": state.tier,
        "tier_reason": state.tier_reason,
        # What the generator was given, in prompt order ([1], [2], ... in the prompt).
        "documents": [{"id": d.id, "title": d.title, "score": d.score, "rank": rank}
                      for rank, d in enumerate(state.reranked, 1)],
        "model": state.completion.model if state.completion else None,
        "citations": [c.model_dump() for c in answer.citations] if answer else [],
        "cites_nothing": answer.cites_nothing if answer else None,
        "timings": state.stage_ms(),
        "hop_ms": state.hop_ms(),
    }


def usage(state: PipelineState) -> dict[str, int]:
    c = state.completion or Completion()
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens}


def chat_completion(state: PipelineState) -> dict[str, Any]:
    """The non-streaming OpenAI `chat.completion` with the `pipeline` extension."""
    text = state.answer.text if state.answer else ""
    finish = state.completion.finish_reason if state.completion else None
    return {
        "id": f"chatcmpl-{state.request_id}",
        "object": "chat.completion",
        "created": state.created,
        "model": PIPELINE_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish or "stop"}],
        "usage": usage(state),
        "pipeline": pipeline_extension(state),
    }


def chat_chunk(state: PipelineState, delta: dict[str, Any], finish_reason: str | None = None,
               final: bool = False) -> dict[str, Any]:
    """One `chat.completion.chunk`; the final one carries usage and the `pipeline` extension."""
    chunk: dict[str, Any] = {
        "id": f"chatcmpl-{state.request_id}",
        "object": "chat.completion.chunk",
        "created": state.created,
        "model": PIPELINE_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if final:
        chunk["usage"] = usage(state)
        chunk["pipeline"] = pipeline_extension(state)
    return chunk


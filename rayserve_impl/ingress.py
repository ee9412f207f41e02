"""The HTTP entry point: the OpenAI chat-completions API over the composed stage deployments.

A FastAPI app served by one Serve deployment (`@serve.ingress`). It validates the request, then
calls the stages through their DeploymentHandles: retrieve -> rerank -> route are chained by
passing each `DeploymentResponse` straight into the next call (Serve resolves it between
replicas), generation goes to the tier's generator, post-processing ends the request.

Streaming (`stream: true`): the generator's streaming method yields text deltas as vLLM makes
them, then once the final `PipelineState` (the completion totals). The ingress cleans each delta
(`PostProcessor.clean_delta`, cheap and local), frames it as a `chat.completion.chunk`, and at the
end sends the final state to the postprocessor deployment for citations and the `pipeline`
extension, which the last chunk carries before `data: [DONE]`.

Errors: every refusal is the shared OpenAI-style body (`RequestError.to_body()`): bad input 400,
unknown model 404, a full queue (Serve's `BackPressureError` from a stage's `max_queued_requests`,
or vLLM's `EngineOverloaded`) 503 with `Retry-After`, anything else 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from rayserve_impl.generate import GenerationEvent
from rayserve_impl.live_config import apply_user_config
from rayserve_impl.metrics import pipeline_metrics
from shared_pipeline.config import Settings
from shared_pipeline.engines.base import EngineOverloaded
from shared_pipeline.pipeline import sse
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import (
    PipelineState,
    RequestError,
    chat_chunk,
    chat_completion,
    parse_chat_request,
)
from shared_pipeline.served_models import models_list
from shared_pipeline.stages.postprocess import PostProcessor

logger = logging.getLogger(__name__)

api = FastAPI(title="twinserve pipeline on Ray Serve")

REQUEST_ID_HEADER = "x-request-id"
# Retry-After when a rejection carries no delay of its own (a stage without `retry_after_s`).
DEFAULT_RETRY_AFTER_S = 1


def _cause(exc: BaseException) -> BaseException:
    """The exception a replica raised, unwrapped from Ray's `RayTaskError` when it is wrapped."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


def as_request_error(exc: BaseException) -> tuple[RequestError, dict[str, str]]:
    """Map an exception to the error answer (and headers) every stack gives for it."""
    cause = _cause(exc)
    if isinstance(cause, RequestError):
        return cause, {}
    if isinstance(cause, BackPressureError):
        retry = cause.retry_after_s if cause.retry_after_s is not None else DEFAULT_RETRY_AFTER_S
        retry = max(1, round(retry))
        return (RequestError(cause.status_code, f"server overloaded: {cause.message}",
                             kind="overloaded_error", retry_after_s=retry),
                {"Retry-After": str(retry)})
    if isinstance(cause, EngineOverloaded):
        retry = max(1, round(cause.retry_after_s))
        return (RequestError(503, f"server overloaded: {cause}", kind="overloaded_error",
                             retry_after_s=retry),
                {"Retry-After": str(retry)})
    return RequestError(500, f"internal error: {type(cause).__name__}", kind="server_error"), {}


def error_response(error: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


async def _chain(first: GenerationEvent,
                 rest: DeploymentResponseGenerator) -> AsyncIterator[GenerationEvent]:
    """The first event (awaited before answering), then the rest of the stream."""
    yield first
    async for event in rest:
        yield event


# NOTE: Serve ships this class to the replica by value; module-level helpers it calls must be
# defined above it.
@serve.deployment(name="ingress")
@serve.ingress(api)
class PipelineIngress:
    """Routes `/v1/chat/completions` and `/v1/models`; owns no model, only handles."""

    def __init__(self, settings: Settings, retriever: DeploymentHandle,
                 reranker: DeploymentHandle, router: DeploymentHandle,
                 generator_small: DeploymentHandle, generator_large: DeploymentHandle,
                 postprocessor: DeploymentHandle) -> None:
        self.base_settings = settings
        self.retriever = retriever
        self.reranker = reranker
        self.router = router
        self.generators = {"small": generator_small, "large": generator_large}
        self.postprocessor = postprocessor
        self.metrics = pipeline_metrics()
        self._configure(settings)

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        self.revision = revision_of(settings)
        self.cleaner = PostProcessor(settings)  # per-chunk cleaning while streaming

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """The same `user_config` as the stages: the revision answers report moves with it."""
        self._configure(apply_user_config(self.base_settings, user_config))

    # ------------------------------------------------------------------ routes
    @api.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        return models_list(self.settings, "rayserve")

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        try:
            body = await request.body()
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise RequestError(400, f"request body is not valid JSON: {exc}") from None
            chat = parse_chat_request(payload, self.settings)
        except RequestError as exc:
            self.metrics.finished(None, exc.status)
            return error_response(exc)
        state = PipelineState.start(chat, request_id)
        state.revision = self.revision
        headers = {REQUEST_ID_HEADER: request_id}
        try:
            state = await self._prepare(state)
            if chat.stream:
                return await self._stream(state, headers)
            generated = self.generators[state.tier].run.remote(state)
            state = await self.postprocessor.run.remote(generated)  # counts the request
        except Exception as exc:
            return self._refuse(state, exc, headers)
        return JSONResponse(chat_completion(state), headers=headers)

    # ------------------------------------------------------------------ helpers
    async def _prepare(self, state: PipelineState) -> PipelineState:
        """retrieve -> rerank -> route, each response handed to the next call unawaited."""
        retrieved = self.retriever.run.remote(state)
        reranked = self.reranker.run.remote(retrieved)
        return await self.router.run.remote(reranked)

    def _refuse(self, state: PipelineState, exc: Exception,
                headers: dict[str, str]) -> JSONResponse:
        error, extra = as_request_error(exc)
        if error.status >= 500 and error.kind == "server_error":
            logger.error("request %s failed", state.request_id, exc_info=exc)
        self.metrics.finished(state, error.status)
        return error_response(error, {**headers, **extra})

    async def _stream(self, state: PipelineState, headers: dict[str, str]) -> Response:
        """Start generation and wait for its first event before answering, so a full queue is
        still a 503 (not a 200 whose stream fails); then stream the rest as SSE."""
        events: DeploymentResponseGenerator = (
            self.generators[state.tier].options(stream=True).stream.remote(state))
        first = await events.__anext__()
        return StreamingResponse(self._sse(state, first, events),
                                 media_type="text/event-stream", headers=headers)

    async def _sse(self, state: PipelineState, first: GenerationEvent,
                   events: DeploymentResponseGenerator) -> AsyncIterator[str]:
        yield sse(chat_chunk(state, {"role": "assistant", "content": ""}))
        emitted = 0
        final = state
        try:
            async for event in _chain(first, events):
                if isinstance(event, PipelineState):
                    final = event
                    continue
                piece = self.cleaner.clean_delta(emitted, event)
                if piece:
                    emitted += len(piece)
                    yield sse(chat_chunk(state, {"content": piece}))
            state = await self.postprocessor.run.remote(final)  # counts the request
        except asyncio.CancelledError:  # the client went away: stop generating for it
            events.cancel()
            self.metrics.finished(final, 499)
            raise
        except Exception as exc:  # headers are sent: the error becomes the last event
            error, _ = as_request_error(exc)
            logger.error("stream %s failed", state.request_id, exc_info=exc)
            self.metrics.finished(final, error.status)
            yield sse(error.to_body())
            yield sse("[DONE]")
            return
        finish = (state.completion.finish_reason if state.completion else None) or "stop"
        yield sse(chat_chunk(state, {}, finish_reason=finish, final=True))
        yield sse("[DONE]")

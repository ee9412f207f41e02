"""The HTTP entry point: the OpenAI chat-completions API over the composed stage deployments.

A FastAPI app served by one Serve deployment (`@serve.ingress`). It validates the request, then
calls the stages through their DeploymentHandles: retrieve -> rerank -> route are chained by
passing each `DeploymentResponse` straight into the next call (Serve resolves it between
replicas), generation goes to the tier's generator, post-processing ends the request.

Streaming (`stream: true`): the generator's streaming method yields text deltas as vLLM makes
them, then once the final `PipelineState` (the completion totals). The ingress cleans and frames
the deltas with the in-process server's code (`shared_pipeline.streaming.content_chunks`), and at
the end sends the final state to the postprocessor deployment for citations and the `pipeline`
extension, which the last chunk carries before `data: [DONE]`. A stream that fails after its
headers ends with one error event, then `data: [DONE]` (`sse_failure`), as on every stack.

Errors: the request enters through `shared_pipeline.entry` and every refusal comes from the shared
table (`shared_pipeline.errors.error_answer`): bad input 400, unknown model 404, a full queue 503
with `Retry-After`, anything else a generic 500. This module adds only Ray's own exceptions: a
`RayTaskError` is unwrapped to what the replica raised, and Serve's `BackPressureError` (a stage's
`max_queued_requests`) becomes the shared `Overloaded`, keeping its status and retry delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
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
from rayserve_impl.readiness import stage_readiness
from shared_pipeline.completions import completion_chunks, include_usage, text_completion
from shared_pipeline.config import Settings
from shared_pipeline.endpoints import health_response, install_route_errors
from shared_pipeline.entry import enter, enter_completion, read_json
from shared_pipeline.errors import ErrorAnswer, Overloaded, error_answer
from shared_pipeline.limits import install_limits
from shared_pipeline.openapi_doc import describe_chat
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import PipelineState, RequestError, chat_completion
from shared_pipeline.served_models import models_list
from shared_pipeline.stages.postprocess import PostProcessor
from shared_pipeline.streaming import DONE, content_chunks, final_chunk, sse, sse_failure

logger = logging.getLogger(__name__)

api = FastAPI(title="twinserve pipeline on Ray Serve")
install_route_errors(api)  # unknown path 404, wrong method 405: OpenAI error bodies
# Size, depth, slow senders, before any parsing. Installed here, not in `__init__`: Serve freezes
# a copy of `api` at decoration, so the limits come from this process's `TWINSERVE_*` / YAML.
# Serve's proxy does not buffer the body whole: it reads chunks as they arrive into a queue the
# replica drains, without back-pressure, so the same limits also run in the proxy
# (`rayserve_impl.proxy_limits`); here they hold for a replica reached another way.
install_limits(api, Settings().server)
describe_chat(api)  # /openapi.json describes the chat body the route reads itself

REQUEST_ID_HEADER = "x-request-id"


def ray_error_answer(exc: BaseException, request_id: str,
                     where: str = "request") -> ErrorAnswer:
    """The shared table's answer, after Ray's own exceptions are translated to shared ones."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause  # what the replica raised
    if isinstance(exc, BackPressureError):
        exc = Overloaded(exc.message, exc.retry_after_s, exc.status_code)
    return error_answer(exc, request_id, where)


def error_response(error: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


async def _chain(first: GenerationEvent,
                 rest: DeploymentResponseGenerator) -> AsyncIterator[GenerationEvent]:
    """The first event (awaited before answering), then the rest of the stream."""
    yield first
    async for event in rest:
        yield event


async def _texts(events: AsyncIterator[GenerationEvent],
                 final: list[PipelineState]) -> AsyncIterator[str]:
    """The text deltas; the final state the generator sends last is appended to `final`."""
    async for event in events:
        if isinstance(event, PipelineState):
            final.append(event)
        else:
            yield event


# NOTE: Serve ships this class to the replica by value; module-level helpers it calls must be
# defined above it.
@serve.deployment(name="ingress")
@serve.ingress(api)
class PipelineIngress:
    """Routes `/v1/chat/completions`, `/v1/completions`, `/v1/models` and `/health`; owns no
    model, only handles."""

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

    @api.get("/health")
    async def health(self) -> Response:
        """200 when every stage deployment has a running replica, else 503 naming the stage."""
        return health_response(await stage_readiness(), {"revision": self.revision})

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        return await self._answer(request, enter, completions=False)

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        """The prompt answered as the question, in the `text_completion` shapes."""
        return await self._answer(request, enter_completion, completions=True)

    # ------------------------------------------------------------------ helpers
    async def _answer(self, request: Request, entry: Callable[..., PipelineState],
                      completions: bool) -> Response:
        try:
            state = entry(read_json(await request.body()), self.settings, self.revision,
                          request.headers.get(REQUEST_ID_HEADER))
        except RequestError as exc:
            self.metrics.finished(None, exc.status)
            return error_response(exc)
        headers = {REQUEST_ID_HEADER: state.request_id}
        try:
            state = await self._prepare(state)
            if state.request.stream:
                return await self._stream(state, headers, completions)
            generated = self.generators[state.tier].run.remote(state)
            state = await self.postprocessor.run.remote(generated)  # counts the request
        except Exception as exc:
            return self._refuse(state, exc, headers)
        whole = chat_completion(state)
        return JSONResponse(text_completion(whole) if completions else whole, headers=headers)

    async def _prepare(self, state: PipelineState) -> PipelineState:
        """retrieve -> rerank -> route, each response handed to the next call unawaited."""
        retrieved = self.retriever.run.remote(state)
        reranked = self.reranker.run.remote(retrieved)
        return await self.router.run.remote(reranked)

    def _refuse(self, state: PipelineState, exc: Exception,
                headers: dict[str, str]) -> JSONResponse:
        error, extra = ray_error_answer(exc, state.request_id)
        self.metrics.finished(state, error.status)
        return error_response(error, {**headers, **extra})

    async def _stream(self, state: PipelineState, headers: dict[str, str],
                      completions: bool) -> Response:
        """Start generation and wait for its first event before answering, so a full queue is
        still a 503 (not a 200 whose stream fails); then stream the rest as SSE."""
        events: DeploymentResponseGenerator = (
            self.generators[state.tier].options(stream=True).stream.remote(state))
        first = await events.__anext__()
        usage = include_usage(state.request)
        frame: Callable[[dict[str, Any]], str] = (
            (lambda c: "".join(sse(x) for x in completion_chunks(c, usage))) if completions
            else sse)
        return StreamingResponse(self._sse(state, first, events, frame),
                                 media_type="text/event-stream", headers=headers)

    async def _sse(self, state: PipelineState, first: GenerationEvent,
                   events: DeploymentResponseGenerator,
                   frame: Callable[[dict[str, Any]], str]) -> AsyncIterator[str]:
        """`frame` writes one chat chunk as SSE (as `text_completion` chunks for completions)."""
        final = [state]
        try:
            async for chunk in content_chunks(state, self.cleaner,
                                              _texts(_chain(first, events), final)):
                yield frame(chunk)
            state = await self.postprocessor.run.remote(final[-1])  # counts the request
        except asyncio.CancelledError:  # the client went away: stop generating for it
            events.cancel()
            self.metrics.finished(final[-1], 499)
            raise
        except Exception as exc:  # headers are sent: the error event, then [DONE]
            error, _ = ray_error_answer(exc, state.request_id, where="stream")
            self.metrics.finished(final[-1], error.status)
            yield sse_failure(error)
            return
        yield frame(final_chunk(state))
        yield sse(DONE)

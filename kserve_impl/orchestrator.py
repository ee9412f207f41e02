"""KServe's second topology: an entry InferenceService (`pipeline`) that calls the stages itself.

Through the InferenceGraph no token streams: KServe's router reads every step's response whole
(kserve/kserve#2837). This entry, the transformer / OpenAI-proxy pattern, calls retriever ->
reranker -> router -> generator-<tier> -> postprocessor over HTTP (`orchestrator_client`) with
the same `PipelineState` the router sends, so the stage servers, their metrics (each stage still
records `pipeline_hop_seconds` as previous stage exit -> its own entry), the error table and the
revisions are the graph topology's, unchanged. With `stream: true` it relays the generator's
NDJSON deltas as OpenAI SSE chunks, cleaned per chunk as on Ray
(`shared_pipeline.streaming.content_chunks`); the final state goes to the postprocessor, whose
citations and `pipeline` extension the last chunk carries.

Routes: kserve 0.21's OpenAI classes import vLLM 0.24 internals (platform notes), so the OpenAI
routes are added to KServe's own FastAPI app: `POST /openai/v1/chat/completions` and
`GET /openai/v1/models` under KServe's OpenAI prefix (`KSERVE_OPENAI_ROUTE_PREFIX`, default
`/openai`), and `POST /v1/chat/completions` too, which does not clash with KServe's
`/v1/models[/{name}[:predict]]`: the openai SDK works with `base_url=<url>/openai/v1` or
`<url>/v1` (where `GET /v1/models` stays KServe's own model list). `/v1/models/pipeline:predict`
answers the same way (KServe's v1 endpoint streams what `predict` returns as an iterator).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import kserve
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kserve_impl.errors import StageError
from kserve_impl.graph.traffic import traffic_route
from kserve_impl.orchestrator_client import StageClient, stage_urls
from shared_pipeline.config import Settings
from shared_pipeline.entry import enter, read_json
from shared_pipeline.errors import error_answer
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import PIPELINE_MODEL, PipelineState, RequestError
from shared_pipeline.served_models import models_list
from shared_pipeline.stages.postprocess import PostProcessor
from shared_pipeline.streaming import DONE, content_chunks, sse, sse_failure

logger = logging.getLogger(__name__)

OPENAI_PREFIX = os.environ.get("KSERVE_OPENAI_ROUTE_PREFIX", "/openai")
REQUEST_ID_HEADER = "x-request-id"
CLIENT_GONE = 499  # counted as a client error: the client closed the stream


def final_chunk_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The stream's last chunk from the postprocessor's `chat.completion` (what
    `shared_pipeline.streaming.final_chunk` makes from the same state)."""
    return {"id": answer["id"], "object": "chat.completion.chunk",
            "created": answer["created"], "model": answer["model"],
            "choices": [{"index": 0, "delta": {},
                         "finish_reason": answer["choices"][0]["finish_reason"]}],
            "usage": answer["usage"], "pipeline": answer["pipeline"]}


async def _texts(events: AsyncIterator[dict[str, Any]],
                 final: list[PipelineState]) -> AsyncIterator[str]:
    """The generator stream's text deltas; its final state is appended to `final`."""
    async for event in events:
        if "delta" in event:
            yield event["delta"]
        elif "state" in event:
            final.append(PipelineState.model_validate(event["state"]))
        else:
            error = event.get("error") or {}
            raise StageError(RequestError(error.get("code") or 500,
                                          error.get("message", "generation failed"),
                                          kind=error.get("type", "server_error")),
                             final[-1])


class PipelineModel(kserve.Model):
    """The `pipeline` model: the OpenAI request in, the stage services called in turn."""

    def __init__(self, name: str, settings: Settings, metrics: PipelineMetrics,
                 urls: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.settings = settings
        self.metrics = metrics
        self.revision = revision_of(settings)
        self.cleaner = PostProcessor(settings)  # per-chunk cleaning while streaming
        self.client = StageClient(urls or stage_urls())

    def load(self) -> bool:
        self.ready = True  # it holds no model; each stage server reports its own readiness
        return self.ready

    def validate(self, payload: Any) -> Any:
        return payload  # validated by the shared entry, with the OpenAI error body

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """A `chat.completion` dict, or with `stream` an async iterator of SSE lines."""
        headers = headers or {}
        try:
            state = enter(payload, self.settings, self.revision, headers.get(REQUEST_ID_HEADER))
        except RequestError as exc:
            raise StageError(exc) from None
        headers = {**headers, REQUEST_ID_HEADER: state.request_id}
        try:
            for service in ("retriever", "reranker", "router"):
                state = await self.client.state(service, state, headers)
            generator = f"generator-{state.tier}"
            if not state.request.stream:
                state = await self.client.state(generator, state, headers)
                return await self.client.call("postprocessor", state, headers)  # counts it
            events = await self.client.stream(generator, state, headers)
        except StageError:
            raise
        except Exception as exc:  # a stage unreachable, a malformed answer: the shared table
            error, error_headers = error_answer(exc, state.request_id, where="orchestrator")
            raise StageError(error, state, error_headers) from None
        return self._sse(state, events, headers)

    async def _sse(self, state: PipelineState, events: AsyncIterator[dict[str, Any]],
                   headers: dict[str, str]) -> AsyncIterator[str]:
        final = [state]
        try:
            async for chunk in content_chunks(state, self.cleaner, _texts(events, final)):
                yield sse(chunk)
            answer = await self.client.call("postprocessor", final[-1], headers)  # counts it
        except (asyncio.CancelledError, GeneratorExit):  # the client went away
            self.metrics.finished(final[-1], CLIENT_GONE)
            raise
        except Exception as exc:  # headers are sent: the error event, then [DONE]
            if isinstance(exc, StageError):
                error = exc.error
                if not exc.counted:
                    self.metrics.finished(final[-1], error.status)
            else:
                error, _ = error_answer(exc, state.request_id, where="stream")
                self.metrics.finished(final[-1], error.status)
            yield sse_failure(error)
            return
        finally:
            await events.aclose()  # closes the upstream stream: the generator stops the row
        yield sse(final_chunk_of(answer))
        yield sse(DONE)


def install_openai_routes(app: FastAPI, model: PipelineModel) -> None:
    """Add the OpenAI routes for `model` to KServe's app (call before `server.start()`)."""

    async def chat_completions(request: Request) -> Response:
        try:
            payload = read_json(await request.body())
        except RequestError as exc:
            raise StageError(exc) from None
        result = await model.predict(payload, dict(request.headers))
        if isinstance(result, dict):
            request_id = result.get("pipeline", {}).get("request_id", "")
            return JSONResponse(result, headers={REQUEST_ID_HEADER: request_id})
        return StreamingResponse(result, media_type="text/event-stream")

    async def models() -> dict[str, Any]:
        return models_list(model.settings, "kserve")

    for prefix in (f"{OPENAI_PREFIX}/v1", "/v1"):
        app.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route(f"{OPENAI_PREFIX}/v1/models", models, methods=["GET"])
    assert model.name == PIPELINE_MODEL, "clients send model=pipeline"


def install_traffic_split(app: FastAPI, model: PipelineModel) -> None:
    """Local mode only: `GET|PUT /local/traffic` on the entry, the graph runner's endpoint, so
    the local rollout (`kserve_impl.rollout`) sets the canary split for this topology too. Never
    on a cluster: there Knative routes split traffic, and the entry takes no control calls."""
    app.router.routes.append(traffic_route(model.client.traffic))

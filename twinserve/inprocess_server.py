"""The in-process reference behind the same OpenAI API the two stacks serve.

`InProcessPipeline` runs every stage in one process; this module puts one FastAPI app (one
uvicorn worker) in front of it, so the load test measures the reference through the very same
client code, HTTP and SSE framing as KServe and Ray Serve. What remains between this and a stack
is the serving layer itself, which is the overhead the comparison reports.

Run it with `python -m twinserve.inprocess_server --port N`; the benchmark starts it as a
subprocess with `loadtests.inprocess_stack.running_stack(settings)` (by module name, so
loadtests never imports twinserve).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shared_pipeline.completions import as_completion_stream, include_usage, text_completion
from shared_pipeline.config import Settings
from shared_pipeline.endpoints import health_response, install_route_errors
from shared_pipeline.entry import enter, enter_completion, read_json
from shared_pipeline.errors import error_answer
from shared_pipeline.limits import install_limits
from shared_pipeline.openapi_doc import describe_chat
from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.schemas import PipelineState, RequestError, chat_completion
from shared_pipeline.served_models import models_list
from shared_pipeline.streaming import DONE, sse, sse_failure

logger = logging.getLogger(__name__)

STACK = "inprocess"
REQUEST_ID_HEADER = "x-request-id"


def error_response(error: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def create_app(settings: Settings, pipeline: InProcessPipeline | None = None) -> FastAPI:
    """The OpenAI-compatible app over one `InProcessPipeline` (built here unless given)."""
    pipeline = pipeline or InProcessPipeline(settings, stack=STACK)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # uvicorn accepts connections only once this returns: ready means the models are loaded.
        await pipeline.start()
        app.state.started = True
        try:
            yield
        finally:
            app.state.started = False
            await pipeline.stop()

    app = FastAPI(title="twinserve in-process reference", lifespan=lifespan)
    app.state.pipeline = pipeline
    app.state.started = False
    install_route_errors(app)
    install_limits(app, settings.server)  # size, depth, slow senders: before any parsing
    describe_chat(app)  # /openapi.json describes the chat body this app reads itself

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return models_list(pipeline.settings, STACK)

    @app.get("/health")
    async def health() -> Response:
        # The CPU stages are built with the pipeline; generation is ready once its engines
        # started (the lifespan) and until they stop.
        generate = None if app.state.started else "the generation engines are not started"
        return health_response({"retrieve": None, "rerank": None, "route": None,
                                "generate": generate, "postprocess": None},
                               {"revision": pipeline.revision, "engine": pipeline.engine.name})

    @app.get("/metrics")
    async def metrics() -> Response:
        import prometheus_client as prom

        return Response(prom.generate_latest(prom.REGISTRY), media_type=prom.CONTENT_TYPE_LATEST)

    async def answer(request: Request, entry: Callable[..., PipelineState],
                     shape: Callable[[dict[str, Any]], dict[str, Any]] | None) -> Response:
        """One request through the pipeline; `shape` re-shapes a chat answer (completions)."""
        try:
            state = entry(read_json(await request.body()), settings, pipeline.revision,
                          request.headers.get(REQUEST_ID_HEADER))
        except RequestError as exc:
            pipeline.metrics.finished(None, exc.status)
            return error_response(exc)
        if state.request.stream:
            return await _stream_response(pipeline, state, completions=shape is not None)
        try:
            state = await pipeline.run_state(state)
        except Exception as exc:  # the shared table: overload 503, anything else a generic 500
            error, headers = error_answer(exc, state.request_id)
            pipeline.metrics.finished(None, error.status)
            return error_response(error, headers)
        whole = chat_completion(state)
        return JSONResponse(shape(whole) if shape else whole)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await answer(request, enter, None)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await answer(request, enter_completion, text_completion)

    return app


async def _stream_response(pipeline: InProcessPipeline, state: PipelineState,
                           completions: bool = False) -> Response:
    """SSE answer. Chunks are read up to the first generated one before the headers go out, so
    a full generator queue is still a proper 503 and not an error inside a 200 stream.
    `completions`: the chunks are re-shaped as `text_completion` chunks."""
    request_id = state.request_id
    chunks = pipeline.stream_state(state)
    if completions:
        chunks = as_completion_stream(chunks, include_usage(state.request))
    head: list[dict[str, Any]] = []
    try:
        async for chunk in chunks:
            head.append(chunk)
            choice = chunk["choices"][0] if chunk["choices"] else {}
            if choice.get("delta", {}).get("content") or choice.get("text") \
                    or choice.get("finish_reason"):
                break
    except Exception as exc:
        error, headers = error_answer(exc, request_id, where="stream")
        pipeline.metrics.finished(None, error.status)
        return error_response(error, headers)

    async def body() -> AsyncIterator[str]:
        for chunk in head:
            yield sse(chunk)
        try:
            async for chunk in chunks:
                yield sse(chunk)
        except Exception as exc:  # headers are sent: the error event, then [DONE]
            error, _ = error_answer(exc, request_id, where="stream")
            pipeline.metrics.finished(None, error.status)
            yield sse_failure(error)
            return
        yield sse(DONE)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--engine", choices=("transformers", "vllm"), default=None,
                        help="generation engine (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if args.engine:
        settings = settings.model_copy(
            update={"generate": settings.generate.model_copy(update={"engine": args.engine})})
    import uvicorn

    config = uvicorn.Config(create_app(settings), host=args.host, port=args.port,
                            log_level="warning", timeout_graceful_shutdown=5)
    # Bound now, listening once the models are loaded: uvicorn.run binds only after the
    # lifespan, and a vLLM engine takes its own free ports while it starts (CI saw one take
    # ours). Bound but not listening, the port refuses connections until the server is ready.
    uvicorn.Server(config).run(sockets=[config.bind_socket()])


if __name__ == "__main__":
    main()

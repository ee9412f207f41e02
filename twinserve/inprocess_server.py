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
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import EngineOverloaded
from shared_pipeline.pipeline import InProcessPipeline, sse
from shared_pipeline.schemas import (
    RequestError,
    chat_completion,
    models_list,
    parse_chat_request,
)

logger = logging.getLogger(__name__)

STACK = "inprocess"


def error_response(exc: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


def overloaded(exc: EngineOverloaded) -> JSONResponse:
    """Fast refusal with a retry hint: the queue is full, waiting longer would not help."""
    refusal = RequestError(503, f"server overloaded: {exc}", None, kind="overloaded_error",
                           retry_after_s=exc.retry_after_s)
    return error_response(refusal, {"Retry-After": str(exc.retry_after_s)})


async def _read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "request body is not valid JSON") from None


def create_app(settings: Settings, pipeline: InProcessPipeline | None = None) -> FastAPI:
    """The OpenAI-compatible app over one `InProcessPipeline` (built here unless given)."""
    pipeline = pipeline or InProcessPipeline(settings, stack=STACK)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # uvicorn accepts connections only once this returns: ready means the models are loaded.
        await pipeline.start()
        try:
            yield
        finally:
            await pipeline.stop()

    app = FastAPI(title="twinserve in-process reference", lifespan=lifespan)
    app.state.pipeline = pipeline

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return models_list()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "revision": pipeline.revision,
                "engine": pipeline.engine.name}

    @app.get("/metrics")
    async def metrics() -> Response:
        import prometheus_client as prom

        return Response(prom.generate_latest(prom.REGISTRY), media_type=prom.CONTENT_TYPE_LATEST)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            chat = parse_chat_request(await _read_json(request), settings)
        except RequestError as exc:
            pipeline.metrics.finished(None, exc.status)
            return error_response(exc)
        request_id = request.headers.get("x-request-id")
        if chat.stream:
            return await _stream_response(pipeline, chat, request_id)
        try:
            state = await pipeline.run(chat, request_id)
        except EngineOverloaded as exc:
            pipeline.metrics.finished(None, 503)
            return overloaded(exc)
        except Exception as exc:  # answered as a 500 with the error shape
            logger.exception("request failed")
            pipeline.metrics.finished(None, 500)
            return error_response(RequestError(500, f"pipeline failed: {exc}", None,
                                               kind="server_error"))
        return JSONResponse(chat_completion(state))

    return app


async def _stream_response(pipeline: InProcessPipeline, chat, request_id: str | None) -> Response:
    """SSE answer. Chunks are read up to the first generated one before the headers go out, so
    a full generator queue is still a proper 503 and not an error inside a 200 stream."""
    chunks = pipeline.stream(chat, request_id)
    head: list[dict[str, Any]] = []
    try:
        async for chunk in chunks:
            head.append(chunk)
            delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
            if delta.get("content") or chunk["choices"][0]["finish_reason"]:
                break
    except EngineOverloaded as exc:
        pipeline.metrics.finished(None, 503)
        return overloaded(exc)
    except Exception as exc:
        logger.exception("stream failed before the first token")
        pipeline.metrics.finished(None, 500)
        return error_response(RequestError(500, f"pipeline failed: {exc}", None,
                                           kind="server_error"))

    async def body() -> AsyncIterator[str]:
        for chunk in head:
            yield sse(chunk)
        try:
            async for chunk in chunks:
                yield sse(chunk)
        except Exception as exc:  # headers are sent: report in-band, no [DONE]
            logger.exception("stream failed mid-answer")
            pipeline.metrics.finished(None, 500)
            yield sse(RequestError(500, f"stream failed: {exc}", None,
                                   kind="server_error").to_body())
            return
        yield sse("[DONE]")

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

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()

"""The local router's HTTP surface and process entry (`python -m kserve_impl.graph`).

Like the router pod, the graph answers `POST /` and, so the openai client works with
`base_url=<url>/v1`, `POST /v1/chat/completions`; `/readyz` for readiness, plus the local traffic
split's endpoint. Beyond the router, the OpenAI surface every stack serves (DESIGN.md):
`POST /v1/completions` (the prompt sent through the graph as the chat request it means, the
answer re-shaped as a `text_completion`; whole, as every graph answer), `GET /v1/models`,
`GET /health` (each step server's readiness) and OpenAI-shaped 404/405 for anything else.
It runs as its own process, as the router runs in its own pod: a benchmark client in the
launcher's process then never shares a GIL or an event loop with it.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kserve_impl.graph.health import step_readiness
from kserve_impl.graph.router import GraphRunner, is_json
from kserve_impl.graph.spec import load_graph
from kserve_impl.graph.traffic import traffic_route
from shared_pipeline.completions import as_chat_payload, as_completion_answer
from shared_pipeline.config import Settings
from shared_pipeline.endpoints import health_response, install_route_errors
from shared_pipeline.entry import read_json
from shared_pipeline.limits import install_limits
from shared_pipeline.schemas import RequestError
from shared_pipeline.served_models import models_list

CHAT_PATHS = ("/", "/v1/chat/completions")


def build_app(runner: GraphRunner, settings: Settings | None = None) -> Starlette:
    """The router's paths, the local traffic split, and the OpenAI surface beside them.

    `settings` (default: read from the environment, as the stage servers read it) only feeds
    `/v1/models`: the graph runner itself runs no stage.
    """

    async def ready(_: Request) -> Response:
        return Response(status_code=200)

    async def graph(request: Request) -> Response:
        status, body = await runner.handle(await request.body(), dict(request.headers))
        return Response(body, status_code=status,
                        media_type="application/json" if is_json(body) else None)

    async def completions(request: Request) -> Response:
        try:
            chat = as_chat_payload(read_json(await request.body()))
        except RequestError as exc:
            return JSONResponse(exc.to_body(), status_code=exc.status)
        status, body = await runner.handle(json.dumps(chat).encode(), dict(request.headers))
        if not is_json(body):
            return Response(body, status_code=status)
        return JSONResponse(as_completion_answer(status, json.loads(body)), status_code=status)

    async def models(_: Request) -> Response:
        return JSONResponse(models_list(settings or Settings(), "kserve"))

    async def health(_: Request) -> Response:
        return health_response(await step_readiness(runner.traffic))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runner.start()
        try:
            yield
        finally:
            await runner.stop()

    app = Starlette(
        routes=[Route("/readyz", ready), traffic_route(runner.traffic),
                *(Route(path, graph, methods=["POST"]) for path in CHAT_PATHS),
                Route("/v1/completions", completions, methods=["POST"]),
                Route("/v1/models", models), Route("/health", health)],
        lifespan=lifespan)
    install_route_errors(app)
    # size, depth, slow senders: before any parsing
    install_limits(app, (settings or Settings()).server)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kserve_impl.graph",
        description="The InferenceGraph router, run locally with KServe's router semantics.")
    parser.add_argument("--graph", type=Path, required=True, help="InferenceGraph YAML file.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8080, help="Port (the router uses 8080).")
    parser.add_argument("--service", action="append", default=[], metavar="NAME=URL",
                        help="Where serviceName NAME is served (its :predict URL); repeat.")
    parser.add_argument("--propagate-header", action="append", default=[], metavar="REGEX",
                        help="Header-name pattern copied to every step; repeat.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s graph: %(message)s")
    services = dict(item.split("=", 1) for item in args.service)
    runner = GraphRunner(load_graph(args.graph), services, args.propagate_header)
    uvicorn.run(build_app(runner), host=args.host, port=args.port, log_level="warning",
                timeout_keep_alive=180)  # routerTimeouts.serverIdle default

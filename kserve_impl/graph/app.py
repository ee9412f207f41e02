"""The local router's HTTP surface and process entry (`python -m kserve_impl.graph`).

Like the router pod: one handler on every path and method (so the openai client works with
`base_url=<url>/v1`), `/readyz` for readiness, plus the local traffic split's endpoint. It runs as
its own process, as the router runs in its own pod: a benchmark client in the launcher's process
then never shares a GIL or an event loop with it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kserve_impl.graph.router import GraphRunner, is_json
from kserve_impl.graph.spec import load_graph
from kserve_impl.graph.traffic import traffic_route
from shared_pipeline.config import Settings
from shared_pipeline.limits import install_limits


def build_app(runner: GraphRunner) -> Starlette:
    """`/readyz`, `/local/traffic`, and the graph on every other path and method."""

    async def ready(_: Request) -> Response:
        return Response(status_code=200)

    async def graph(request: Request) -> Response:
        status, body = await runner.handle(await request.body(), dict(request.headers))
        return Response(body, status_code=status,
                        media_type="application/json" if is_json(body) else None)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runner.start()
        try:
            yield
        finally:
            await runner.stop()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[Route("/readyz", ready), traffic_route(runner.traffic),
                Route("/{path:path}", graph, methods=methods)],
        lifespan=lifespan)
    install_limits(app, Settings().server)  # size, depth, slow senders: before any parsing
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

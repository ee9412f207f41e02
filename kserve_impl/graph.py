"""A local InferenceGraph runner with the KServe router's semantics (`cmd/router/main.go`).

It executes `manifests/kserve/inferencegraph.yaml` the way the router pod does on a cluster
(reference kserve.md section 3.2), so local and cluster runs read the same manifest:

- one handler on every path and method (so the openai client works with `base_url=<url>/v1`),
  `/readyz` for readiness; every step is an HTTP POST of the raw bytes, responses are read whole
  (no streaming pass-through);
- Sequence: a step gets the node input, or the previous step's response when `data` is the literal
  `$response` (and it is not the first step); `mapPredictionsToInstances` rewrites
  `{"predictions": [...]}` to `{"instances": [...]}`; a step `condition` is checked on the previous
  response (no match: stop, return that response with 200; first step: 500 "invalid response");
  a `Hard` step answering non-2xx stops the sequence with its body and status, a `Soft` one does
  not; the node's result is the last step's body and status;
- Switch: the first step whose GJSON `condition` exists in the node input wins; none: 404 with
  `{"error": "Failed to process request", "cause": "None of the routes matched with the switch
  condition"}`. Like the router, an error inside a nested node reaches the Sequence that called it
  as a 500 with the same cause (the 404 surfaces only when the Switch is the root node);
- Splitter (weights) and Ensemble (parallel, merged by step name) for completeness;
- `routerTimeouts.serviceClient` bounds each step call (none when unset, as `http.DefaultClient`);
  a failed or timed-out call is a 500 with the router's error body;
- only headers matching the propagate patterns (the router's `PROPAGATE_HEADERS`) go to the steps,
  matched against Go's canonical header names; `Content-Type: application/json` is added.
  Like the router, response headers of the steps (e.g. `Retry-After`) are not passed back.

`serviceName` resolves through a name -> URL map the launcher gives (on a cluster the controller
resolves it to `<isvc url>/v1/models/<model>:predict`); `serviceUrl` is used as written.

Local stand-in for Knative's traffic split: on a cluster, an InferenceService URL is a Knative
route that sends `canaryTrafficPercent`% of calls to the latest revision and the rest to the
previous one. Locally `PUT /local/traffic {"service", "canary_url", "percent"}` gives a service
a second URL and its share, drawn per call as Knative draws per request (`percent: 0` = roll
back; `GET /local/traffic` shows the split). Each step call draws on its own, as each
InferenceService's route does: one request may pass revisions of different services.

It runs as its own process (`python -m kserve_impl.graph`), as the router runs in its own pod: a
benchmark client in the launcher's process then never shares a GIL or an event loop with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kserve_impl import gjson

logger = logging.getLogger(__name__)

ROUTER_ERROR = "Failed to process request"
NO_ROUTE_MATCHED = "None of the routes matched with the switch condition"
TRAFFIC_PATH = "/local/traffic"  # local mode only: the Knative traffic split's stand-in


class RoutingError(Exception):
    """A router-level failure: answered with `status` and the router's error body."""

    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause


@dataclass(frozen=True)
class InferenceStep:
    name: str = ""
    service_name: str = ""
    service_url: str = ""
    node_name: str = ""
    data: str = ""
    condition: str = ""
    dependency: str = "Soft"
    weight: int | None = None
    map_predictions_to_instances: bool = False

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> InferenceStep:
        targets = [k for k in ("serviceName", "serviceUrl", "nodeName") if spec.get(k)]
        if len(targets) != 1:
            raise ValueError(f"step {spec.get('name', '?')!r} needs exactly one of serviceName, "
                             f"serviceUrl, nodeName; has {targets}")
        return cls(name=spec.get("name", ""), service_name=spec.get("serviceName", ""),
                   service_url=spec.get("serviceUrl", ""), node_name=spec.get("nodeName", ""),
                   data=spec.get("data", ""), condition=spec.get("condition", ""),
                   dependency=spec.get("dependency", "Soft"), weight=spec.get("weight"),
                   map_predictions_to_instances=bool(spec.get("mapPredictionsToInstances")))


@dataclass(frozen=True)
class RouterNode:
    router_type: str
    steps: tuple[InferenceStep, ...]


@dataclass(frozen=True)
class GraphSpec:
    """The parts of an InferenceGraph `spec` the router reads."""

    name: str
    nodes: dict[str, RouterNode]
    service_client_timeout_s: float | None = None
    router_timeouts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> GraphSpec:
        if manifest.get("kind") != "InferenceGraph":
            raise ValueError(f"expected kind InferenceGraph, got {manifest.get('kind')!r}")
        spec = manifest["spec"]
        nodes = {name: RouterNode(node["routerType"],
                                  tuple(InferenceStep.from_spec(s) for s in node.get("steps", [])))
                 for name, node in spec["nodes"].items()}
        if "root" not in nodes:
            raise ValueError("an InferenceGraph needs a node named 'root'")
        for name, node in nodes.items():
            for step in node.steps:
                if step.node_name and step.node_name not in nodes:
                    raise ValueError(f"node {name!r} step {step.name!r} names unknown node "
                                     f"{step.node_name!r}")
        timeouts = spec.get("routerTimeouts") or {}
        client = timeouts.get("serviceClient")
        return cls(name=manifest["metadata"]["name"], nodes=nodes,
                   service_client_timeout_s=float(client) if client else None,
                   router_timeouts=dict(timeouts))

    def service_names(self) -> set[str]:
        return {s.service_name for n in self.nodes.values() for s in n.steps if s.service_name}


def load_graph(path: Path) -> GraphSpec:
    """The InferenceGraph in a (possibly multi-document) YAML file."""
    with Path(path).open(encoding="utf-8") as fh:
        for doc in yaml.safe_load_all(fh):
            if doc and doc.get("kind") == "InferenceGraph":
                return GraphSpec.from_manifest(doc)
    raise ValueError(f"{path} holds no InferenceGraph")


def canonical_header(name: str) -> str:
    """Go's `http.CanonicalHeaderKey`: the form the router's propagate patterns see."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def is_success(status: int) -> bool:
    return 200 <= status <= 299


class GraphRunner:
    """Executes a `GraphSpec` against HTTP services.

    Args:
        graph: the parsed InferenceGraph.
        services: serviceName -> the URL its steps POST to.
        propagate: regexes of header names copied to every step (the router's PROPAGATE_HEADERS).
    """

    def __init__(self, graph: GraphSpec, services: dict[str, str],
                 propagate: list[str] | tuple[str, ...] = ()) -> None:
        missing = graph.service_names() - services.keys()
        if missing:  # the controller requeues until every InferenceService resolves
            raise ValueError(f"no URL for serviceName {sorted(missing)}")
        self.graph = graph
        self.services = services
        self.canaries: dict[str, tuple[str, int]] = {}  # serviceName -> (canary URL, percent)
        self._patterns = [re.compile(p) for p in propagate]
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        # Step timeouts are enforced per call (asyncio.wait_for), so the client itself has none.
        self._client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(
            max_connections=256, max_keepalive_connections=64))

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The router's `graphHandler`: the root node's result, or the router's error body."""
        try:
            status, response = await self.route_node("root", body, self._forwarded(headers))
        except RoutingError as exc:
            logger.error("failed to process request: %s", exc.cause)
            return exc.status, json.dumps({"error": ROUTER_ERROR, "cause": exc.cause}).encode()
        return status, response

    def _forwarded(self, headers: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in headers.items():
            canonical = canonical_header(name)
            if any(p.search(canonical) for p in self._patterns):
                out[canonical] = value
        if not any(k.lower() == "content-type" for k in out):
            out["Content-Type"] = "application/json"
        return out

    # ------------------------------------------------------------ nodes
    async def route_node(self, name: str, data: bytes,
                         headers: dict[str, str]) -> tuple[int, bytes]:
        node = self.graph.nodes[name]
        if node.router_type == "Sequence":
            return await self._sequence(node, data, headers)
        if node.router_type == "Switch":
            step = self._pick_by_condition(node, data)
            if step is None:
                raise RoutingError(404, NO_ROUTE_MATCHED)
            return await self._single(step, data, headers)
        if node.router_type == "Splitter":
            return await self._single(self._pick_by_weight(node), data, headers)
        if node.router_type == "Ensemble":
            return await self._ensemble(node, data, headers)
        raise RoutingError(500, f"invalid route type: {node.router_type}")

    async def _sequence(self, node: RouterNode, data: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        status, response = 0, b""
        for i, step in enumerate(node.steps):
            request = data
            if step.data == "$response" and i > 0:
                request = self._map_predictions(response) if step.map_predictions_to_instances \
                    else response
            if step.condition:
                if i == 0 or not _valid_json(response):
                    raise RoutingError(500, "invalid response")
                if not gjson.exists(response, step.condition):
                    return 200, response  # condition not met: stop with what we have
            try:
                status, response = await self._execute(step, request, headers)
            except RoutingError as exc:  # a nested node's or a call's error: 500, same cause
                raise RoutingError(500, exc.cause) from None
            if step.dependency == "Hard" and not is_success(status):
                logger.info("hard dependency %r answered %d: stopping", step.name, status)
                return status, response
        return status, response

    async def _single(self, step: InferenceStep, data: bytes,
                      headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            return await self._execute(step, data, headers)
        except RoutingError as exc:
            raise RoutingError(500, exc.cause) from None

    async def _ensemble(self, node: RouterNode, data: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        results = await asyncio.gather(*(self._execute(s, data, headers) for s in node.steps),
                                       return_exceptions=True)
        merged: dict[str, Any] = {}
        for i, (step, result) in enumerate(zip(node.steps, results, strict=True)):
            if isinstance(result, BaseException):
                cause = result.cause if isinstance(result, RoutingError) else str(result)
                raise RoutingError(500, cause)
            status, body = result
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise RoutingError(500, str(exc)) from None
            if not isinstance(decoded, dict):
                raise RoutingError(500, "ensemble step response is not a JSON object")
            if step.dependency == "Hard" and not is_success(status):
                return status, json.dumps(decoded).encode()
            merged[step.name or str(i)] = decoded
        return 200, json.dumps(merged).encode()

    @staticmethod
    def _pick_by_condition(node: RouterNode, data: bytes) -> InferenceStep | None:
        if not _valid_json(data):
            return None
        return next((s for s in node.steps if gjson.exists(data, s.condition)), None)

    @staticmethod
    def _pick_by_weight(node: RouterNode) -> InferenceStep:
        point, end = random.randrange(100), 0
        for step in node.steps:
            end += step.weight or 0
            if point < end:
                return step
        raise RoutingError(500, "splitter weights do not cover the drawn point")

    @staticmethod
    def _map_predictions(response: bytes) -> bytes:
        try:
            decoded = json.loads(response)
        except ValueError:
            return response
        if isinstance(decoded, dict) and "predictions" in decoded:
            return json.dumps({"instances": decoded["predictions"]}).encode()
        return response

    # ------------------------------------------------------------ steps
    async def _execute(self, step: InferenceStep, data: bytes,
                       headers: dict[str, str]) -> tuple[int, bytes]:
        if step.node_name:
            return await self.route_node(step.node_name, data, headers)
        url = step.service_url or self._resolve(step.service_name)
        return await self._call(url, data, headers)

    def _resolve(self, service: str) -> str:
        """The service's URL, or its canary's for `percent`% of calls (Knative's split)."""
        canary = self.canaries.get(service)
        if canary is not None and random.randrange(100) < canary[1]:
            return canary[0]
        return self.services[service]

    def set_traffic(self, service: str, canary_url: str | None, percent: int) -> None:
        """Send `percent`% of `service`'s calls to `canary_url` (None or 0%: all to stable)."""
        if service not in self.services:
            raise KeyError(f"no service {service!r}; known: {sorted(self.services)}")
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be 0..100, not {percent}")
        if canary_url is None:
            self.canaries.pop(service, None)
        else:
            self.canaries[service] = (canary_url, percent)
        logger.info("traffic for %s: %d%% to %s", service, percent, canary_url or "stable")

    async def _call(self, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._client is None:
            raise RuntimeError("GraphRunner.start() was not awaited")
        timeout = self.graph.service_client_timeout_s
        try:
            response = await asyncio.wait_for(
                self._client.post(url, content=data, headers=headers), timeout)
        except TimeoutError:
            raise RoutingError(500, f'Post "{url}": context deadline exceeded '
                                    "(Client.Timeout exceeded while awaiting headers)") from None
        except httpx.HTTPError as exc:
            raise RoutingError(500, f'Post "{url}": {exc or type(exc).__name__}') from None
        return response.status_code, response.content


def _valid_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def build_app(runner: GraphRunner) -> Starlette:
    """The router's HTTP surface: `/readyz`, and the graph on every other path and method."""

    async def ready(_: Request) -> Response:
        return Response(status_code=200)

    async def traffic(request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = json.loads(await request.body())
                runner.set_traffic(body["service"], body.get("canary_url"),
                                   int(body.get("percent", 0)))
            except (ValueError, KeyError, TypeError) as exc:
                return Response(json.dumps({"error": f"bad traffic request: {exc}"}),
                                status_code=400, media_type="application/json")
        split = {name: {"canary_url": url, "percent": pct}
                 for name, (url, pct) in runner.canaries.items()}
        return Response(json.dumps(split), media_type="application/json")

    async def graph(request: Request) -> Response:
        status, body = await runner.handle(await request.body(), dict(request.headers))
        media = "application/json" if _valid_json(body) else None
        return Response(body, status_code=status, media_type=media)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runner.start()
        try:
            yield
        finally:
            await runner.stop()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[Route("/readyz", ready),
                Route(TRAFFIC_PATH, traffic, methods=["GET", "PUT"]),
                Route("/{path:path}", graph, methods=methods)],
        lifespan=lifespan)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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


if __name__ == "__main__":
    main()

"""`GraphRunner`: an InferenceGraph executed with the KServe router's semantics
(`cmd/router/main.go`, reference kserve.md section 3.2), so local and cluster runs agree:

- every step is an HTTP POST of the raw bytes; responses are read whole (no streaming);
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
- `routerTimeouts.serviceClient` bounds each step call (none when unset, as `http.DefaultClient`);
  a failed or timed-out call is a 500 with the router's error body;
- only headers matching the propagate patterns (the router's `PROPAGATE_HEADERS`) go to the steps,
  matched against Go's canonical header names; `Content-Type: application/json` is added.
  Like the router, response headers of the steps (e.g. `Retry-After`) are not passed back.

`serviceName` resolves through the launcher's name -> URL map (on a cluster the controller
resolves it to `<isvc url>/v1/models/<model>:predict`), with the local traffic split
(`traffic.py`) in between; `serviceUrl` is used as written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping

import httpx

from kserve_impl import gjson
from kserve_impl.graph.spec import SEQUENCE, GraphSpec, InferenceStep, RouterNode
from kserve_impl.graph.traffic import TrafficSplit

logger = logging.getLogger(__name__)

ROUTER_ERROR = "Failed to process request"
NO_ROUTE_MATCHED = "None of the routes matched with the switch condition"


class RoutingError(Exception):
    """A router-level failure: answered with `status` and the router's error body."""

    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause


def canonical_header(name: str) -> str:
    """Go's `http.CanonicalHeaderKey`: the form the router's propagate patterns see."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def is_success(status: int) -> bool:
    return 200 <= status <= 299


def is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


class GraphRunner:
    """Executes a `GraphSpec` against HTTP services.

    Args:
        graph: the parsed InferenceGraph.
        services: serviceName -> the URL its steps POST to.
        propagate: regexes of header names copied to every step (the router's PROPAGATE_HEADERS).
    """

    def __init__(self, graph: GraphSpec, services: Mapping[str, str],
                 propagate: list[str] | tuple[str, ...] = ()) -> None:
        missing = graph.service_names() - services.keys()
        if missing:  # the controller requeues until every InferenceService resolves
            raise ValueError(f"no URL for serviceName {sorted(missing)}")
        self.graph = graph
        self.traffic = TrafficSplit(services)
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
        if node.router_type == SEQUENCE:
            return await self._sequence(node, data, headers)
        step = self._switch(node, data)  # the spec admits only Sequence and Switch
        if step is None:
            raise RoutingError(404, NO_ROUTE_MATCHED)
        try:
            return await self._execute(step, data, headers)
        except RoutingError as exc:
            raise RoutingError(500, exc.cause) from None

    async def _sequence(self, node: RouterNode, data: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        status, response = 0, b""
        for i, step in enumerate(node.steps):
            request = data
            if step.data == "$response" and i > 0:
                request = _map_predictions(response) if step.map_predictions_to_instances \
                    else response
            if step.condition:
                if i == 0 or not is_json(response):
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

    @staticmethod
    def _switch(node: RouterNode, data: bytes) -> InferenceStep | None:
        """The first step whose condition exists in `data` (invalid JSON matches none, and so
        does an empty condition, as an empty GJSON path)."""
        try:
            decoded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        return next((s for s in node.steps
                     if s.condition and gjson.parse(s.condition).matches(decoded)), None)

    # ------------------------------------------------------------ steps
    async def _execute(self, step: InferenceStep, data: bytes,
                       headers: dict[str, str]) -> tuple[int, bytes]:
        if step.node_name:
            return await self.route_node(step.node_name, data, headers)
        url = step.service_url or self.traffic.resolve(step.service_name)
        return await self._call(url, data, headers)

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


def _map_predictions(response: bytes) -> bytes:
    """`mapPredictionsToInstances`: `{"predictions": [...]}` becomes `{"instances": [...]}`."""
    try:
        decoded = json.loads(response)
    except ValueError:
        return response
    if isinstance(decoded, dict) and "predictions" in decoded:
        return json.dumps({"instances": decoded["predictions"]}).encode()
    return response

"""Local stand-in for Knative's traffic split: one InferenceService name, two revisions' URLs.

On a cluster an InferenceService URL is a Knative route that sends `canaryTrafficPercent`% of
calls to the latest revision and the rest to the previous one. Locally `PUT /local/traffic
{"service", "canary_url", "percent"}` gives a service a second URL and its share, drawn per call
as Knative draws per request (`percent: 0` = roll back; `GET /local/traffic` shows the split).
Each step call draws on its own, as each InferenceService's route does: one request may pass
revisions of different services.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

logger = logging.getLogger(__name__)

TRAFFIC_PATH = "/local/traffic"  # local mode only


class TrafficSplit:
    """serviceName -> the URL a step call goes to, with an optional canary and its percent."""

    def __init__(self, services: Mapping[str, str]) -> None:
        self.services = dict(services)
        self.canaries: dict[str, tuple[str, int]] = {}  # serviceName -> (canary URL, percent)

    def resolve(self, service: str) -> str:
        """The service's URL, or its canary's for `percent`% of calls."""
        canary = self.canaries.get(service)
        if canary is not None and random.randrange(100) < canary[1]:
            return canary[0]
        return self.services[service]

    def set(self, service: str, canary_url: str | None, percent: int) -> None:
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

    def describe(self) -> dict[str, dict[str, Any]]:
        return {name: {"canary_url": url, "percent": pct}
                for name, (url, pct) in self.canaries.items()}


def traffic_route(split: TrafficSplit) -> Route:
    """`GET|PUT /local/traffic`: show or change `split`; a bad PUT is a 400 saying why."""

    async def traffic(request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = json.loads(await request.body())
                split.set(body["service"], body.get("canary_url"), int(body.get("percent", 0)))
            except (ValueError, KeyError, TypeError) as exc:
                return Response(json.dumps({"error": f"bad traffic request: {exc}"}),
                                status_code=400, media_type="application/json")
        return Response(json.dumps(split.describe()), media_type="application/json")

    return Route(TRAFFIC_PATH, traffic, methods=["GET", "PUT"])

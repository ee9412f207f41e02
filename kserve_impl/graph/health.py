"""`GET /health` of the local graph runner: is every step's model server ready?

On a cluster the InferenceGraph is Ready when every InferenceService it names is; locally the
runner asks each step server itself through the shared KServe probe (`kserve_impl/readiness.py`:
`GET /v1/models/<model>`, `{"ready": true}`, beside the step's `:predict` URL). A canary
revision receiving traffic is asked too: a request may be routed to it.
"""

from __future__ import annotations

import httpx

from kserve_impl.graph.traffic import TrafficSplit
from kserve_impl.readiness import service_readiness


async def step_readiness(split: TrafficSplit) -> dict[str, str | None]:
    """stage -> None when every server of it is ready, else the first reason it is not."""
    targets = list(split.services.items())
    targets += [(name, url) for name, (url, pct) in split.canaries.items() if pct > 0]
    async with httpx.AsyncClient() as client:
        return await service_readiness(client, targets)

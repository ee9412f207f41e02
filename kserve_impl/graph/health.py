"""`GET /health` of the local graph runner: is every step's model server ready?

On a cluster the InferenceGraph is Ready when every InferenceService it names is; locally the
runner asks each step server itself, as the pods' readiness probes do: KServe's v1 model-ready
endpoint (`GET /v1/models/<model>`, `{"ready": true}`) beside the step's `:predict` URL. A canary
revision receiving traffic is asked too: a request may be routed to it.
"""

from __future__ import annotations

import asyncio

import httpx

from kserve_impl.graph.traffic import TrafficSplit
from shared_pipeline.endpoints import STAGE_OF_SERVICE

PROBE_TIMEOUT_S = 2.0
PREDICT = ":predict"


def ready_url(predict_url: str) -> str:
    """`.../v1/models/<model>:predict` -> `.../v1/models/<model>` (KServe's model-ready path)."""
    return predict_url.removesuffix(PREDICT)


async def _probe(client: httpx.AsyncClient, service: str, url: str) -> str | None:
    """None when the model server says ready, else why not."""
    try:
        r = await client.get(ready_url(url))
    except httpx.HTTPError as exc:
        return f"{service} at {ready_url(url)} is unreachable ({type(exc).__name__})"
    if r.status_code == 200 and r.json().get("ready") is True:
        return None
    return f"{service} answered {r.status_code} at {ready_url(url)}"


async def step_readiness(split: TrafficSplit) -> dict[str, str | None]:
    """stage -> None when every server of it is ready, else the first reason it is not."""
    targets = [(name, url) for name, url in split.services.items()]
    targets += [(name, url) for name, (url, pct) in split.canaries.items() if pct > 0]
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        answers = await asyncio.gather(*(_probe(client, n, u) for n, u in targets))
    out: dict[str, str | None] = {}
    for (name, _), why in zip(targets, answers, strict=True):
        stage = STAGE_OF_SERVICE.get(name, name)
        out[stage] = out.get(stage) or why
    return out

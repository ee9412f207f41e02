"""Which pipeline stages' InferenceServices can take requests now (`GET /health`).

Both KServe entries ask the stage model servers themselves, as the pods' readiness probes do:
KServe's v1 model-ready endpoint, `GET /v1/models/<model>` beside the stage's `:predict` URL
(200 `{"name": ..., "ready": true}`; a model not ready is KServe's 503 `ModelNotReady`). The
graph runner asks each step (`graph/health.py`), the orchestrating entry each stage it calls
(`orchestrator_routes.py`), through this one probe, so both report a stage the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from shared_pipeline.endpoints import STAGE_OF_SERVICE

PROBE_TIMEOUT_S = 2.0  # a probe, not a request: a stage slower than this to say "ready" is not
PREDICT = ":predict"


def ready_url(predict_url: str) -> str:
    """`.../v1/models/<model>:predict` -> `.../v1/models/<model>` (KServe's model-ready path)."""
    return predict_url.removesuffix(PREDICT)


async def probe(client: httpx.AsyncClient, service: str, predict_url: str) -> str | None:
    """None when the model server says ready, else why not."""
    url = ready_url(predict_url)
    try:
        r = await client.get(url, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"{service} at {url} is unreachable ({type(exc).__name__})"
    if r.status_code == 200 and r.json().get("ready") is True:
        return None
    return f"{service} answered {r.status_code} at {url}"


async def service_readiness(client: httpx.AsyncClient,
                            targets: Iterable[tuple[str, str]]) -> dict[str, str | None]:
    """stage -> None when every (service, `:predict` URL) of it is ready, else the first
    reason it is not. A service that is not a pipeline stage reports under its own name."""
    targets = list(targets)
    answers = await asyncio.gather(*(probe(client, name, url) for name, url in targets))
    out: dict[str, str | None] = {}
    for (name, _), why in zip(targets, answers, strict=True):
        stage = STAGE_OF_SERVICE.get(name, name)
        out[stage] = out.get(stage) or why
    return out

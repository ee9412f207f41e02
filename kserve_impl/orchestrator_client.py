"""The orchestrator's calls to the stage InferenceServices: one pooled `httpx.AsyncClient`.

Each stage is called on its v1 `:predict` URL with the `PipelineState` JSON, exactly what the
InferenceGraph router sends it, so the stage servers run unchanged behind either topology. Where
the URLs come from: `TWINSERVE_STAGE_URL_<SERVICE>` (e.g. `TWINSERVE_STAGE_URL_GENERATOR_SMALL`)
in the entry's environment; the manifest sets the in-cluster Service addresses, local mode the
loopback ports it started.

A stage's error answer is relayed as it came (status, OpenAI body, `Retry-After`), marked as
already counted: the stage server that produced it counted it in `pipeline_requests_total`.

Each call resolves its service's URL through a `TrafficSplit`, the graph runner's: on a cluster
the split is empty (the stage URL is a Knative route, which splits `canaryTrafficPercent` itself);
locally a rollout sets it (`PUT /local/traffic`, served with `--local_traffic_split`), so a
canary sees the same share of calls behind either topology.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from kserve_impl.errors import StageError
from kserve_impl.graph.traffic import TrafficSplit
from kserve_impl.manifests import stage_url_env
from shared_pipeline.schemas import PipelineState, RequestError

SERVICES = ("retriever", "reranker", "router", "generator-small", "generator-large",
            "postprocessor")
# Generation may take minutes on CPU; connecting must not.
TIMEOUT = httpx.Timeout(600.0, connect=10.0)
LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128)
FORWARD_HEADERS = ("x-request-id", "authorization")


def stage_urls(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """service -> its `:predict` URL; a missing one is an error at start, not per request."""
    missing = [stage_url_env(s) for s in SERVICES if not environ.get(stage_url_env(s))]
    if missing:
        raise ValueError(f"the orchestrator needs the stage URLs: set {', '.join(missing)}")
    return {s: environ[stage_url_env(s)] for s in SERVICES}


def relayed_error(response: httpx.Response, state: PipelineState | None) -> StageError:
    """A stage's non-200 answer as the orchestrator's own: same status, body and Retry-After."""
    try:
        error = response.json()["error"]
        refused = RequestError(response.status_code, error["message"], error.get("param"),
                               error.get("type", "invalid_request_error"),
                               error.get("retry_after_s"))
    except (ValueError, KeyError, TypeError):  # not our body (e.g. a proxy's): keep the status
        refused = RequestError(response.status_code, f"a stage answered {response.status_code}",
                               kind="server_error")
    headers = {"Retry-After": response.headers["retry-after"]} \
        if "retry-after" in response.headers else {}
    return StageError(refused, state, headers, counted=True)


class StageClient:
    """Calls the stage services over one connection pool (created on first use, in the loop)."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.traffic = TrafficSplit(urls)  # stable URLs, plus a canary's while one is set
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _request(self, service: str, state: PipelineState,
                 headers: Mapping[str, str]) -> httpx.Request:
        forwarded = {k: headers[k] for k in FORWARD_HEADERS if k in headers}
        return self.http.build_request(
            "POST", self.traffic.resolve(service), content=state.model_dump_json(),
            headers={**forwarded, "content-type": "application/json"})

    async def call(self, service: str, state: PipelineState,
                   headers: Mapping[str, str]) -> dict[str, Any]:
        """The stage's whole JSON answer; its error answer raised as a relayed `StageError`."""
        response = await self.http.send(self._request(service, state, headers))
        if response.status_code != 200:
            raise relayed_error(response, state)
        return response.json()

    async def state(self, service: str, state: PipelineState,
                    headers: Mapping[str, str]) -> PipelineState:
        return PipelineState.model_validate(await self.call(service, state, headers))

    async def stream(self, service: str, state: PipelineState,
                     headers: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Open the generator's NDJSON stream: the status is checked before this returns (a
        full queue is raised here as the 503), then its lines as objects."""
        response = await self.http.send(self._request(service, state, headers), stream=True)
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            raise relayed_error(response, state)
        return _lines(response)


async def _lines(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The stream's objects; closing this early closes the connection, which cancels the
    generator server's response and so the engine's row."""
    try:
        async for line in response.aiter_lines():
            if line:
                yield json.loads(line)
    finally:
        await response.aclose()

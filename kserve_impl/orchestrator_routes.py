"""The orchestrating entry's HTTP surface: the OpenAI routes added to KServe's own FastAPI app.

kserve 0.21's OpenAI classes import vLLM 0.24 internals (platform notes), so the routes are added
to the app `kserve.model_server` serves, before `ModelServer.start()` registers KServe's own
(routes match in the order added, so these come first):

- `POST .../chat/completions` and `POST .../completions`, under KServe's OpenAI prefix
  (`KSERVE_OPENAI_ROUTE_PREFIX`, default `/openai`: `/openai/v1/...`) and under `/v1`, where they
  do not clash with KServe's `/v1/models/{name}[:predict]`; the openai SDK works with
  `base_url=<url>/openai/v1` or `<url>/v1`.
- `GET .../models`, both prefixes. `/v1/models` is also KServe's v1 model list
  (`{"models": [names]}`), which this route now answers first, so the body is the OpenAI list
  with KServe's `models` field kept: an OpenAI client and a v1-protocol client each read theirs.
- `GET /health`: every stage InferenceService asked for its KServe model readiness over the
  entry's pooled client (`kserve_impl/readiness.py`), 503 naming the first stage not ready.
  The entry's own `GET /v1/models/pipeline` (its readiness probe) stays KServe's and stays
  ready: an entry that holds no model should not be restarted because a stage is down.
- An unknown path is a 404 and a wrong method a 405 in the OpenAI error shape
  (`shared_pipeline.endpoints.install_route_errors`), as on every stack.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kserve_impl.errors import StageError
from kserve_impl.graph.traffic import traffic_route
from kserve_impl.orchestrator import REQUEST_ID_HEADER, PipelineModel
from kserve_impl.readiness import service_readiness
from shared_pipeline.endpoints import health_response, install_route_errors
from shared_pipeline.entry import read_json
from shared_pipeline.schemas import PIPELINE_MODEL, RequestError
from shared_pipeline.served_models import models_list

OPENAI_PREFIX = os.environ.get("KSERVE_OPENAI_ROUTE_PREFIX", "/openai")
PREFIXES = (f"{OPENAI_PREFIX}/v1", "/v1")


def install_openai_routes(app: FastAPI, model: PipelineModel) -> None:
    """Add the OpenAI routes for `model` to KServe's app (call before `server.start()`)."""
    assert model.name == PIPELINE_MODEL, "clients send model=pipeline"

    async def respond(request: Request, completions: bool) -> Response:
        try:
            payload = read_json(await request.body())
        except RequestError as exc:
            raise StageError(exc) from None
        result = await model.answer(payload, dict(request.headers), completions)
        if isinstance(result, dict):
            request_id = result.get("pipeline", {}).get("request_id", "")
            return JSONResponse(result, headers={REQUEST_ID_HEADER: request_id})
        return StreamingResponse(result, media_type="text/event-stream")

    async def chat_completions(request: Request) -> Response:
        return await respond(request, completions=False)

    async def completions(request: Request) -> Response:
        """The prompt answered as the question, in the `text_completion` shapes."""
        return await respond(request, completions=True)

    async def models() -> dict[str, Any]:
        listed = models_list(model.settings, "kserve")
        return {**listed, "models": [card["id"] for card in listed["data"]]}

    async def health() -> Response:
        readiness = await service_readiness(model.client.http, model.client.urls.items())
        return health_response(readiness, {"revision": model.revision})

    for prefix in PREFIXES:
        app.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
        app.add_api_route(f"{prefix}/completions", completions, methods=["POST"])
        app.add_api_route(f"{prefix}/models", models, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])
    install_route_errors(app)


def install_traffic_split(app: FastAPI, model: PipelineModel) -> None:
    """Local mode only: `GET|PUT /local/traffic` on the entry, the graph runner's endpoint, so
    the local rollout (`kserve_impl.rollout`) sets the canary split for this topology too. Never
    on a cluster: there Knative routes split traffic, and the entry takes no control calls."""
    app.router.routes.append(traffic_route(model.client.traffic))

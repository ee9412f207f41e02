"""The HTTP surface every stack shares beyond the answer itself: `/health`, unknown routes.

- `health_answer`: `GET /health` is 200 when every stage is ready and 503 naming the first stage
  that is not (DESIGN.md). Each stack finds readiness its own way (the in-process server its
  engines, Ray its deployments' status, the KServe graph runner each step server's model-ready
  endpoint) and answers through this one function, so the body is the same everywhere.
- `install_route_errors`: an unknown path is a 404 and a wrong method a 405 in the OpenAI error
  shape (`{"error": {"message": "Invalid URL (POST /v1/x)", ...}}`, as api.openai.com answers),
  not Starlette's `{"detail": "Not Found"}`. It registers one Starlette exception handler, which
  works for FastAPI apps (the in-process server, Ray's `@serve.ingress` app) and plain Starlette
  apps (the graph runner) alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared_pipeline.schemas import STAGES, RequestError

# What each stack calls the server of a stage (KServe InferenceService, Ray deployment): one name
# per stage, two generators for `generate`. A stack's /health reports by stage.
STAGE_OF_SERVICE = {"retriever": "retrieve", "reranker": "rerank", "router": "route",
                    "generator-small": "generate", "generator-large": "generate",
                    "postprocessor": "postprocess"}
READY = "ready"
UNAVAILABLE = "unavailable_error"


def health_answer(readiness: Mapping[str, str | None],
                  about: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """(status, body) for `GET /health`.

    Args:
        readiness: stage -> None when ready, else why it is not (e.g. "generator-small is
            DEPLOYING"). Stages are reported in pipeline order.
        about: what else the stack says about itself in the body (revision, engine).
    """
    order = [s for s in STAGES if s in readiness] + [s for s in readiness if s not in STAGES]
    stages = {s: readiness[s] or READY for s in order}
    waiting = [s for s in order if readiness[s] is not None]
    if not waiting:
        return 200, {"status": "ok", **(about or {}), "stages": stages}
    first = waiting[0]
    error = RequestError(503, f"stage {first!r} is not ready: {readiness[first]}",
                         kind=UNAVAILABLE)
    return 503, {**error.to_body(), "status": "unavailable", **(about or {}), "stages": stages}


def health_response(readiness: Mapping[str, str | None],
                    about: Mapping[str, Any] | None = None) -> JSONResponse:
    status, body = health_answer(readiness, about)
    return JSONResponse(body, status_code=status)


def route_error(status: int, method: str, path: str, detail: str | None = None) -> RequestError:
    """The OpenAI-shaped refusal of a request no route answers (404) or not with this method
    (405); another HTTP error keeps its status and detail."""
    if status == 404:
        return RequestError(404, f"Invalid URL ({method} {path})")
    if status == 405:
        return RequestError(405, f"Method {method} is not allowed for {path}")
    return RequestError(status, detail or "request refused")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error = route_error(exc.status_code, request.method, request.url.path, str(exc.detail))
    return JSONResponse(error.to_body(), status_code=error.status, headers=exc.headers)


def install_route_errors(app: Any) -> None:
    """Answer Starlette's 404/405 (and any other `HTTPException`) in the OpenAI error shape."""
    app.add_exception_handler(HTTPException, _http_error)

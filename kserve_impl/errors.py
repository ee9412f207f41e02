"""Error answers of the KServe stage servers: one exception, one handler, the OpenAI body shape.

A stage raises `StageError` (status, `RequestError.to_body()` JSON, optional headers). One handler,
registered on KServe's FastAPI app, turns it into the response and counts the finished request in
`pipeline_requests_total`, so every error answer is counted exactly once, where it is produced.

Why a registered handler: KServe's v1 endpoint serialises whatever `predict` returns as a 200, and
maps its own exception types to fixed bodies (`{"error": "..."}`) in `protocol/rest/server.py`;
`ModelServer.register_exception_handler` is the asyncio loop's handler, not an HTTP one; a FastAPI
`HTTPException` answers `{"detail": ...}`. A handler for our own exception class on the app keeps
the status and the body we choose, and the router passes both on through the graph (Hard steps).

`PipelineDataPlane` covers the one error raised before any model code runs: a body that is not
JSON (KServe's `DataPlane.decode` raises `InvalidInput`), so it too gets the OpenAI body shape.
"""

from __future__ import annotations

import logging
from typing import Any

import kserve
from fastapi import Request
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane

from shared_pipeline.engines.base import EngineOverloaded
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.schemas import PipelineState, RequestError

logger = logging.getLogger(__name__)


class StageError(Exception):
    """An error answer: HTTP status, OpenAI-style body, the state so far (for the tier label)."""

    def __init__(self, error: RequestError, state: PipelineState | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.state = state
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.error.status

    @classmethod
    def overloaded(cls, exc: EngineOverloaded, state: PipelineState | None) -> StageError:
        error = RequestError(503, f"server overloaded: {exc}", None, kind="overloaded_error",
                             retry_after_s=exc.retry_after_s)
        return cls(error, state, {"Retry-After": str(exc.retry_after_s)})

    @classmethod
    def internal(cls, stage: str, exc: BaseException, state: PipelineState | None) -> StageError:
        return cls(RequestError(500, f"{stage} failed: {type(exc).__name__}: {exc}", None,
                                kind="server_error"), state)


class PipelineDataPlane(DataPlane):
    """KServe's data plane, with an undecodable body reported as a 400 in the OpenAI shape."""

    def decode(self, body, headers, *args: Any, **kwargs: Any):
        try:
            return super().decode(body, headers, *args, **kwargs)
        except InvalidInput as exc:
            raise StageError(RequestError(400, f"request body is not valid JSON: {exc}")) from None


def install_error_handling(server: kserve.ModelServer, metrics: PipelineMetrics) -> None:
    """Register the `StageError` handler and the JSON-error data plane on `server`.

    NOTE: call before `server.start()`: the REST server reads `server.dataplane` there, and
    Starlette copies the handler table when the app first runs.
    """
    from kserve.model_server import app

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StageError)
        metrics.finished(exc.state, exc.status)
        if exc.status >= 500:
            logger.error("answering %d: %s", exc.status, exc.error.message)
        return JSONResponse(exc.error.to_body(), status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(StageError, handle)
    server.dataplane = PipelineDataPlane(model_registry=server.registered_models)

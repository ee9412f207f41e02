"""Error answers of the KServe stage servers: one exception, one handler, the OpenAI body shape.

A stage raises `StageError`: the answer of the shared table (`shared_pipeline.errors.error_answer`:
`RequestError` as it is, an overload 503 with `Retry-After`, anything else a generic 500), the
state so far, the headers. One handler,
registered on KServe's FastAPI app, turns it into the response and counts the finished request in
`pipeline_requests_total`, so every error answer is counted exactly once, where it is produced.

Why a registered handler: KServe's v1 endpoint serialises whatever `predict` returns as a 200, and
maps its own exception types to fixed bodies (`{"error": "..."}`) in `protocol/rest/server.py`;
`ModelServer.register_exception_handler` is the asyncio loop's handler, not an HTTP one; a FastAPI
`HTTPException` answers `{"detail": ...}`. A handler for our own exception class on the app keeps
the status and the body we choose, and the router passes both on through the graph (Hard steps).

`PipelineDataPlane` covers KServe's own exception, raised before any model code runs: a body that
is not JSON (`DataPlane.decode` raises `InvalidInput`) gets the same 400 as on every stack.
"""

from __future__ import annotations

import logging
from typing import Any

import kserve
from fastapi import Request
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane

from shared_pipeline.entry import NOT_JSON
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.schemas import PipelineState, RequestError

logger = logging.getLogger(__name__)


class StageError(Exception):
    """An error answer: HTTP status, OpenAI-style body, the state so far (for the tier label)."""

    def __init__(self, error: RequestError, state: PipelineState | None = None,
                 headers: dict[str, str] | None = None, counted: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.state = state
        self.headers = headers or {}
        # An answer relayed from a stage server (the orchestrator's upstream) was already
        # counted there; it is passed on, not counted twice.
        self.counted = counted

    @property
    def status(self) -> int:
        return self.error.status


class PipelineDataPlane(DataPlane):
    """KServe's data plane, with an undecodable body reported as a 400 in the OpenAI shape."""

    def decode(self, body, headers, *args: Any, **kwargs: Any):
        try:
            return super().decode(body, headers, *args, **kwargs)
        except InvalidInput:
            raise StageError(RequestError(400, NOT_JSON)) from None


def install_error_handling(server: kserve.ModelServer, metrics: PipelineMetrics) -> None:
    """Register the `StageError` handler and the JSON-error data plane on `server`.

    NOTE: call before `server.start()`: the REST server reads `server.dataplane` there, and
    Starlette copies the handler table when the app first runs.
    """
    from kserve.model_server import app

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StageError)
        if not exc.counted:
            metrics.finished(exc.state, exc.status)
        if exc.status >= 500:
            logger.error("answering %d: %s", exc.status, exc.error.message)
        return JSONResponse(exc.error.to_body(), status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(StageError, handle)
    server.dataplane = PipelineDataPlane(model_registry=server.registered_models)

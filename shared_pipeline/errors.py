"""The one table from an exception to the error answer every stack gives (DESIGN.md, Errors).

KServe's stage servers, the Ray ingress and the in-process server all answer through
`error_answer`, so a client gets the same status, OpenAI `type` and `param` whichever serving
layer refused it. An adapter adds only its framework's own exceptions, translated before the
table: KServe's data plane `InvalidInput` becomes a `RequestError`, Ray's `BackPressureError`
becomes `Overloaded`, a `RayTaskError` is unwrapped to what the replica raised.

| exception          | status              | type                                   | headers     |
|--------------------|---------------------|----------------------------------------|-------------|
| `RequestError`     | its own             | its own (invalid_request_error, ...)   | none        |
| `Overloaded`       | its own (503 / 429) | overloaded_error (+ `retry_after_s`)   | Retry-After |
| `EngineOverloaded` | 503                 | overloaded_error (+ `retry_after_s`)   | Retry-After |
| anything else      | 500                 | server_error, a generic message        | none        |

A 500 never carries the exception's text (it can hold paths, prompts, other users' data): the
exception is logged with the request id (the `x-request-id` a client sent or was answered with),
and the body says only that the server log has the details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shared_pipeline.engines.base import EngineOverloaded
from shared_pipeline.schemas import RequestError

logger = logging.getLogger(__name__)

ErrorAnswer = tuple[RequestError, dict[str, str]]
# Retry-After when an overload carries no delay of its own.
DEFAULT_RETRY_AFTER_S = 1


class Overloaded(Exception):
    """A serving layer refused the request because a queue is full (not the engine's own)."""

    def __init__(self, reason: str, retry_after_s: float | None = None,
                 status: int = 503) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments when it crosses processes (a Ray replica to the ingress).
        return type(self), (self.reason, self.retry_after_s, self.status)


# One fixed text: it says where to look, never what went wrong inside, and load-test error
# tallies group it as one error (a per-request id in it would make every failure unique).
INTERNAL_MESSAGE = "internal server error; the server log has the details"


def internal_error() -> RequestError:
    """The 500 answer."""
    return RequestError(500, INTERNAL_MESSAGE, kind="server_error")


def _overloaded(exc: Overloaded) -> ErrorAnswer:
    retry = DEFAULT_RETRY_AFTER_S if exc.retry_after_s is None else exc.retry_after_s
    retry_s = max(1, round(retry))
    error = RequestError(exc.status, f"server overloaded: {exc.reason}", kind="overloaded_error",
                         retry_after_s=retry_s)
    return error, {"Retry-After": str(retry_s)}


def _engine_overloaded(exc: EngineOverloaded) -> ErrorAnswer:
    return _overloaded(Overloaded(str(exc), exc.retry_after_s))


def _refused(exc: RequestError) -> ErrorAnswer:
    return exc, {}


# First match wins; order from the most specific. Anything not listed is a 500.
TABLE: tuple[tuple[type[BaseException], Callable[[Any], ErrorAnswer]], ...] = (
    (RequestError, _refused),
    (Overloaded, _overloaded),
    (EngineOverloaded, _engine_overloaded),
)


def error_answer(exc: BaseException, request_id: str | None = None,
                 where: str = "request") -> ErrorAnswer:
    """The `RequestError` and response headers to answer `exc` with.

    Args:
        exc: what was raised (already translated by the adapter for its framework's own types).
        request_id: the request's id, logged with an unexpected exception.
        where: what failed (a stage name, "stream"), for the log line.
    """
    for kind, answer in TABLE:
        if isinstance(exc, kind):
            return answer(exc)
    logger.error("%s failed (request %s)", where, request_id, exc_info=exc)
    return internal_error(), {}

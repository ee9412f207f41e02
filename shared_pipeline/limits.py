"""Request limits enforced before any route parses a body: size, JSON nesting, slow senders.

A pure ASGI middleware, so every entry installs the same code with one line whatever its
framework: the graph runner (Starlette), the Ray ingress (FastAPI behind Serve's proxy), the
in-process server (FastAPI) and KServe's orchestrator. Each refusal is an OpenAI error body from
`RequestError.to_body()`:

| problem                                            | status |
|----------------------------------------------------|--------|
| `Content-Length` over `max_body_bytes`             | 413, answered before one byte is read |
| a body (chunked or not) that grows over the limit  | 413, as soon as it does; the rest unread |
| the body not complete within `body_timeout_s`      | 408    |
| JSON nested deeper than `max_json_depth`           | 400    |
| a duplicate object key, `NaN` or `Infinity`        | 400 naming it (not JSON by RFC 8259) |

The body is read here (at most the limit), then replayed to the app unchanged; later `receive`
calls (a client disconnecting during a stream) go to the server as before. The depth check
scans brackets outside strings without recursion, so `json.loads` never meets a body deep enough
to hit Python's recursion limit. Duplicate keys and the non-standard constants are refused here
because Python's `json` accepts them silently (the last key wins; NaN reaches the model) while
KServe's orjson refuses NaN and keeps a different key: refused once, every stack answers alike.
A body that is not JSON at all is left to the route, which answers it as it always has.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np

from shared_pipeline.config import ServerSettings
from shared_pipeline.schemas import RequestError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_JSON_DEPTH = 32
DEFAULT_BODY_TIMEOUT_S = 30.0

# A JSON string: possessive quantifiers, so no backtracking on hostile input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes, limit: int) -> int:
    """The deepest bracket nesting of `body` (strings ignored); exact up to `limit` + 1.

    Cheap for ordinary bodies: a body with no more than `limit` opening brackets cannot nest
    deeper, and is passed without the scan. Malformed JSON gives a number too; `json.loads`
    refuses it afterwards.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return 0
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps, dtype=np.int64).max())


class NotStrictJson(RequestError):
    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(400, message, param=param)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise NotStrictJson(f"duplicate key {twice!r} in a JSON object", twice)
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise NotStrictJson(f"{name} is not a JSON number", None)


def check_strict_json(body: bytes) -> None:
    """Raise `NotStrictJson` for a duplicate key or NaN/Infinity; other bad JSON passes on."""
    try:
        json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return  # not JSON at all: the route's own 400


class BodyTooLarge(RequestError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes",
                         param="body")


class BodyTooSlow(RequestError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"request body not received within {timeout_s:g} s",
                         param="body", kind="timeout_error")


class TooDeep(RequestError):
    def __init__(self, limit: int) -> None:
        super().__init__(400, f"request body nests JSON deeper than {limit} levels",
                         param="body")


class RequestLimits:
    """ASGI middleware: `app = RequestLimits(app, max_body_bytes=..., ...)`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
                 body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_length(scope)
            body, disconnected = await self._read(receive)
            if not disconnected and json_depth(body, self.max_json_depth) > self.max_json_depth:
                raise TooDeep(self.max_json_depth)
            if not disconnected and body:
                check_strict_json(body)
        except RequestError as exc:
            await _answer(send, exc)
            return
        if disconnected:
            return  # the client left before its body was complete: nobody to answer
        await self.app(scope, _replay(body, receive), send)

    def _check_length(self, scope: Scope) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise RequestError(400, "Content-Length is not a number",
                                       param="content-length") from None
                if declared > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body (refused once over the limit or late) and whether the client left."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return b"", True
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise BodyTooLarge(self.max_body_bytes)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks), False
        except TimeoutError:
            raise BodyTooSlow(self.body_timeout_s) from None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app the body read already, then the server's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, error: RequestError) -> None:
    """The error as a JSON response; the connection closes, so an unread rest is dropped."""
    payload = json.dumps(error.to_body()).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


def install_limits(app: Any, server: ServerSettings) -> None:
    """Add the limits as the outermost middleware of a Starlette/FastAPI `app` (one line per
    entry: `install_limits(app, settings.server)`), before the app serves its first request."""
    app.add_middleware(RequestLimits, max_body_bytes=server.max_body_bytes,
                       max_json_depth=server.max_json_depth,
                       body_timeout_s=server.body_timeout_s)

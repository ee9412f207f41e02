"""The request limits in Serve's HTTP proxy, ahead of the ingress replica.

Serve's proxy reads a request's body as it arrives into a per-request queue that the replica
drains (`proxy_asgi_receive` in ray/serve/_private/proxy.py), with no back-pressure: the proxy
does not buffer the body whole before routing, but while the replica's 413 travels back it keeps
reading. So the limits run in the proxy too, through Serve's hook for proxy middlewares: the
environment variable `RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH` names `middlewares` below
(`rayserve_impl.local` sets it for `ray start`). A `Content-Length` over the limit is then
refused from the headers in the proxy, before a byte is read or a replica is called.
"""

from __future__ import annotations

from starlette.middleware import Middleware

from shared_pipeline.config import Settings
from shared_pipeline.limits import RequestLimits

CALLBACK = f"{__name__}:middlewares"


def middlewares() -> list[Middleware]:
    """Serve's proxy callback: the limits, from this process's `TWINSERVE_*` / YAML settings."""
    server = Settings().server
    return [Middleware(RequestLimits, max_body_bytes=server.max_body_bytes,
                       max_json_depth=server.max_json_depth,
                       body_timeout_s=server.body_timeout_s)]

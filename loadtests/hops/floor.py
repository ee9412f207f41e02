"""The HTTP floor: a bare ASGI echo under uvicorn, no framework, no JSON work.

    python -m loadtests.hops.floor --port 8080

A round trip to it is what any Python HTTP hop on this machine costs at least: httpx's client,
the loopback, uvicorn's HTTP parsing and one ASGI call. Every HTTP row reads against it.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

HOST = "127.0.0.1"


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every POST with its own body; `GET /` is the readiness probe."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(echo, host=HOST, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""A null KServe stage: a `kserve.Model` whose v1 `:predict` answers the body it was given.

    python -m loadtests.hops.null_kserve --model_name null --http_port 8080

It runs the same `kserve.ModelServer` (REST v1, gRPC off) the pipeline's stages run
(`kserve_impl/server.py`), so a round trip to it is one KServe hop with no stage work in it:
the server's request parsing, the data plane, JSON encoding of the answer, and the loopback.
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve

HOST = "127.0.0.1"


class LoopbackModelServer(kserve.ModelServer):
    """`kserve.ModelServer` bound to 127.0.0.1: KServe 0.21 hard-codes 0.0.0.0 in its
    `RESTServer` config, built in `start()` before `setup_event_loop()` and before any socket
    exists, so the host is set there (the approach of kserve_impl's `--http_host`)."""

    def setup_event_loop(self) -> None:
        if self._rest_server is not None:
            self._rest_server.config.host = HOST
        super().setup_event_loop()


class NullModel(kserve.Model):
    """Returns its input: the KServe hop without a stage."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser],
                                     description=__doc__.split("\n")[0])
    parser.set_defaults(enable_grpc=False)  # the graph calls REST v1 only, as in server.py
    args = parser.parse_args(argv)
    model = NullModel(args.model_name)
    model.load()
    LoopbackModelServer(http_port=args.http_port, workers=1, enable_grpc=False,
                       timeout_keep_alive=args.timeout_keep_alive).start([model])


if __name__ == "__main__":
    main()

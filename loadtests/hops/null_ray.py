"""The Ray rows: a DeploymentHandle hop to a null deployment, and the bare actor-call floor.

    python -m loadtests.hops.null_ray --profile default --sizes 1024,10240 --cells 1:200,8:400 \
        --warmup 10 --out result.json

One process per profile, because `RAY_SERVE_THROUGHPUT_OPTIMIZED` is read when Ray Serve is
imported in each Ray process: the parent sets the environment, and this process starts a fresh
local Ray (loopback, 2 CPUs, no dashboard) that every worker inherits it from.

How a hop is timed: a `Driver` deployment holds a handle to the `Null` deployment and times
`await handle.echo.remote(payload)` inside its replica, which is where the pipeline's ingress
makes its stage calls; no HTTP proxy is on the path, so nothing has to be subtracted. The floor
is the same loop in a plain async actor calling a plain async actor (`await actor.echo.remote`).
Payloads are JSON-shaped dicts, so the orjson serializer can carry them too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from loadtests.hops.measure import measure_cell
from loadtests.hops.payloads import make_payload

PROFILES = {
    # row name -> DeploymentHandle.options(...) for that row
    "default": {"ray_handle": {},
                "ray_handle_by_value": {"_by_reference": False},
                "ray_handle_orjson": {"_by_reference": False, "request_serialization": "orjson",
                                      "response_serialization": "orjson"}},
    # Under RAY_SERVE_THROUGHPUT_OPTIMIZED=1 handles default to by-value calls over gRPC.
    "throughput": {"ray_throughput": {},
                   "ray_throughput_orjson": {"request_serialization": "orjson",
                                             "response_serialization": "orjson"}},
}
PROFILE_ENV = {"default": {}, "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}}
NO_CPU = {"num_cpus": 0}  # a null stage reserves nothing, so every actor fits on 2 CPUs


@serve.deployment(max_ongoing_requests=64, ray_actor_options=NO_CPU)
class Null:
    """Returns its input: the Serve hop without a stage."""

    async def echo(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


async def _measure_rows(calls: dict[str, Any], sizes: list[int], cells: list[list[int]],
                        warmup: int) -> list[dict[str, Any]]:
    results = []
    for row, target in calls.items():
        for size in sizes:
            payload = make_payload(size)

            async def call(target: Any = target, payload: dict[str, Any] = payload,
                           row: str = row) -> None:
                answer = await target(payload)
                if len(answer["documents"]) != len(payload["documents"]):
                    raise RuntimeError(f"{row}: the null stage changed the payload")

            for concurrency, n in cells:
                stats = await measure_cell(call, n, concurrency, warmup)
                results.append({"row": row, "size": size, "concurrency": concurrency} | stats)
    return results


@serve.deployment(max_ongoing_requests=4, ray_actor_options=NO_CPU)
class Driver:
    """Times handle calls to `Null` from inside a replica, one row per handle option set."""

    def __init__(self, null: DeploymentHandle) -> None:
        self._null = null

    async def measure(self, rows: dict[str, dict[str, Any]], sizes: list[int],
                      cells: list[list[int]], warmup: int) -> list[dict[str, Any]]:
        calls = {}
        for row, options in rows.items():
            handle = self._null.options(method_name="echo", **options)
            calls[row] = lambda payload, handle=handle: handle.remote(payload)
        return await _measure_rows(calls, sizes, cells, warmup)


@ray.remote(**NO_CPU)
class NullActor:
    async def echo(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


@ray.remote(**NO_CPU)
class Pinger:
    """The floor: a plain async actor awaiting a plain async actor's method."""

    async def measure(self, target: Any, sizes: list[int], cells: list[list[int]],
                      warmup: int) -> list[dict[str, Any]]:
        calls = {"floor_ray_actor": lambda payload: target.echo.remote(payload)}
        return await _measure_rows(calls, sizes, cells, warmup)


def run_profile(profile: str, sizes: list[int], cells: list[list[int]],
                warmup: int) -> list[dict[str, Any]]:
    """Start local Ray, measure the profile's rows (and the actor floor), stop Ray."""
    missing = {k: v for k, v in PROFILE_ENV[profile].items() if os.environ.get(k) != v}
    if missing:
        raise RuntimeError(f"profile {profile!r} needs {missing} in the environment at start")
    ray.init(address="local", include_dashboard=False, num_cpus=2,
             _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        serve.start(proxy_location="Disabled")
        driver = serve.run(Driver.bind(Null.bind()), name="hops", route_prefix=None)

        async def measure_and_shut_down() -> list[dict[str, Any]]:
            # Under RAY_SERVE_THROUGHPUT_OPTIMIZED a handle's router runs on the caller's loop,
            # so the call, and Serve's shutdown of that handle, happen inside one event loop.
            rows = await driver.measure.remote(PROFILES[profile], sizes, cells, warmup)
            if profile == "default":
                pinger, null = Pinger.remote(), NullActor.remote()
                rows += await pinger.measure.remote(null, sizes, cells, warmup)
            await serve.shutdown_async()
            return rows

        results = asyncio.run(measure_and_shut_down())
    finally:
        ray.shutdown()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--sizes", required=True, help="Payload sizes in bytes, comma-separated.")
    parser.add_argument("--cells", required=True, help="concurrency:n pairs, comma-separated.")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True, help="Where the JSON results go.")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    cells = [[int(x) for x in cell.split(":")] for cell in args.cells.split(",")]
    results = run_profile(args.profile, sizes, cells, args.warmup)
    args.out.write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main()

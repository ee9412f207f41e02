"""The timing loop every transport shares: n round trips at a fixed concurrency.

It imports nothing but the standard library, because it also runs inside a Ray Serve driver
deployment and a Ray actor (the Ray rows time their handle calls where the ingress makes them).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def drive(call: Callable[[], Awaitable[Any]], n: int, concurrency: int,
                warmup: int = 10) -> tuple[list[float], float]:
    """Seconds per call for `n` calls made by `concurrency` workers, each one call at a time,
    and the wall time of those `n` calls.

    `warmup` calls (made at the same concurrency) are discarded first: they open connections,
    fill caches and let a router learn its replicas.
    """
    async def worker(count: int, out: list[float]) -> None:
        for _ in range(count):
            start = time.perf_counter()
            await call()
            out.append(time.perf_counter() - start)

    async def run(total: int) -> list[float]:
        out: list[float] = []
        share, extra = divmod(total, concurrency)
        await asyncio.gather(*(worker(share + (1 if i < extra else 0), out)
                               for i in range(concurrency)))
        return out

    if warmup:
        await run(max(warmup, concurrency))
    start = time.perf_counter()
    durations = await run(n)
    return durations, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank, of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(durations_s: list[float], wall_s: float) -> dict[str, float]:
    """n, p50/p95/mean in milliseconds, and calls per second over the wall time."""
    ms = [d * 1000 for d in durations_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3), "mean_ms": round(sum(ms) / len(ms), 3),
            "rps": round(len(ms) / max(wall_s, 1e-9), 1)}


async def measure_cell(call: Callable[[], Awaitable[Any]], n: int, concurrency: int,
                       warmup: int = 10) -> dict[str, float]:
    """`drive`, then `summarize` its calls."""
    durations, wall = await drive(call, n, concurrency, warmup)
    return summarize(durations, wall)

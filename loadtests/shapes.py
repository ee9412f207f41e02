"""Load shapes: closed-loop concurrency steps and open-loop constant / Poisson arrivals.

A *phase* is one load level held for a while. Closed-loop phases keep N users busy (each sends
its next request when the last one is answered), which is how throughput vs concurrency is
measured. Open-loop phases send on a schedule fixed in advance, whatever the server does, which
is how queueing shows: when the server falls behind, requests wait (or are refused) instead of
the client slowing down. Locust itself is closed-loop, so an open-loop phase runs a pool of
`max_users` users that take send times from one shared `ArrivalSchedule`; when every user is
busy a send is late, and the achieved rate falls below the requested one. Both are reported.

This module is pure (schedules, phase timing, achieved-rate arithmetic) and imports no locust,
whose import patches the standard library with gevent; the locustfile adapts it to locust's
`LoadTestShape`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

PHASE_ENV = "TWINSERVE_LOAD_PHASE"  # the phase, as JSON, for the locustfile's shape
STOP_FILE_ENV = "TWINSERVE_STOP_FILE"  # when this file exists, the phase ends early
LOAD_END_ENV = "TWINSERVE_LOAD_END_FILE"  # the locustfile writes the load's end time here


class ConcurrencyPhase(BaseModel):
    """Closed loop: `users` users, each sending its next request as soon as one is answered.

    With `min_requests`, the load goes on past `duration_s` until that many requests were sent
    (at most `max_duration_s`): a phase sized by its sample, so a slow stack still gives the n
    its tail percentiles need and a fast one is not held longer than `duration_s`."""

    kind: Literal["concurrency"] = "concurrency"
    name: str
    users: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    min_requests: int = Field(0, ge=0, description="keep the load on until this many were sent")
    max_duration_s: float | None = Field(None, gt=0, description="the cap on `min_requests` "
                                         "(default 4 x duration_s)")

    @property
    def longest_s(self) -> float:
        """The longest this phase's load can last."""
        if not self.min_requests:
            return self.duration_s
        return max(self.duration_s, self.max_duration_s or 4 * self.duration_s)

    @property
    def load(self) -> float:
        """The x-axis value of this phase in the report (users)."""
        return float(self.users)

    @property
    def pool_size(self) -> int:
        return self.users


class ArrivalPhase(BaseModel):
    """Open loop: requests sent at `rate_rps`, evenly spaced (`constant`) or as a Poisson
    process (`poisson`, exponential gaps); at most `max_users` in flight at once."""

    kind: Literal["constant", "poisson"]
    name: str
    rate_rps: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    max_users: int = Field(16, gt=0, description="cap on requests in flight")
    seed: int = 0

    @property
    def longest_s(self) -> float:
        return self.duration_s

    @property
    def load(self) -> float:
        return self.rate_rps

    @property
    def pool_size(self) -> int:
        return self.max_users


Phase = Annotated[ConcurrencyPhase | ArrivalPhase, Field(discriminator="kind")]
PHASE_ADAPTER: TypeAdapter[ConcurrencyPhase | ArrivalPhase] = TypeAdapter(Phase)


def parse_phase(text: str) -> ConcurrencyPhase | ArrivalPhase:
    return PHASE_ADAPTER.validate_json(text)


def arrival_offsets(kind: str, rate_rps: float, duration_s: float, seed: int = 0) -> list[float]:
    """Send times (seconds from the phase start) inside `[0, duration_s)`.

    Both kinds send exactly round(rate x duration) requests, so the requested mean rate is
    met exactly and stacks are compared on the same count. `constant`: k / rate. `poisson`:
    exponential gaps (seeded: the same send times against every stack), rescaled so the gaps
    (one more than the sends) span the phase, as `vllm bench serve` rescales its arrivals.
    """
    if rate_rps <= 0 or duration_s <= 0:
        return []
    count = round(rate_rps * duration_s)
    if kind == "constant":
        return [k / rate_rps for k in range(count)]
    if kind == "poisson":
        rng = random.Random(seed)
        gaps = [rng.expovariate(rate_rps) for _ in range(count + 1)]
        scale = duration_s / sum(gaps)
        offsets, t = [], 0.0
        for gap in gaps[:-1]:
            t += gap * scale
            offsets.append(t)
        return offsets
    raise ValueError(f"unknown arrival kind {kind!r}")


@dataclass
class ArrivalSchedule:
    """The shared send schedule of one open-loop phase; users claim slots in order.

    Locust users are greenlets, so `claim` runs without interruption: two users never get the
    same slot. A slot claimed after its time is sent at once and counted as late.
    """

    offsets: list[float]
    started: float = field(default_factory=time.monotonic)
    _next: int = 0

    def claim(self) -> float | None:
        """The absolute (monotonic) send time of the next slot, or None when none is left."""
        if self._next >= len(self.offsets):
            return None
        at = self.started + self.offsets[self._next]
        self._next += 1
        return at

    @property
    def claimed(self) -> int:
        return self._next


def shape_tick(phase: ConcurrencyPhase | ArrivalPhase, run_time_s: float,
               sent: int = 0) -> tuple[int, float] | None:
    """What locust should run `run_time_s` into the phase, `sent` requests sent so far:
    (users, spawn rate), or None = stop."""
    short = isinstance(phase, ConcurrencyPhase) and sent < phase.min_requests
    if run_time_s >= (phase.longest_s if short else phase.duration_s):
        return None
    users = phase.pool_size
    return users, float(users)  # spawn the whole pool at once: no ramp inside a phase


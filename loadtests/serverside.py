"""Server-side figures of one load window, asked of Prometheus (PromQL) or of the fallback scraper.

The harness asks three kinds of question, and both sources answer them the same way:
- how much a counter grew in a window, summed by some labels (`counter_increase`);
- a histogram's growth in a window (buckets, sum, count), from which quantiles and means are
  computed here with Prometheus's own `histogram_quantile` interpolation;
- a gauge over time, summed by some labels (`gauge_range`), for queue depth and in-flight plots.
Everything is filtered on the contract's `stack` label, so one Prometheus holds all stacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from loadtests.prometheus import PrometheusServer, window

Key = tuple[str, ...]


@dataclass
class HistogramDelta:
    """A histogram's increase over a window: cumulative bucket counts by upper bound."""

    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    sum: float = 0.0
    count: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.buckets)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's `histogram_quantile` on cumulative buckets (linear inside a bucket; the
    first bucket starts at 0; a rank in the +Inf bucket answers the highest finite bound)."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    if not math.isinf(bounds[-1]):
        return None  # Prometheus needs the +Inf bucket too
    total = buckets[bounds[-1]]
    if total <= 0 or math.isnan(total):
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return bounds[-2] if len(bounds) > 1 else None
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return bounds[-2] if len(bounds) > 1 else None


class ServerSideSource(Protocol):
    """What the harness needs from a metrics store; `kind` names it in the report."""

    kind: str

    def counter_increase(self, name: str, stack: str, by: tuple[str, ...], start: float,
                         end: float) -> dict[Key, float]: ...

    def histogram(self, name: str, stack: str, by: tuple[str, ...], start: float,
                  end: float) -> dict[Key, HistogramDelta]: ...

    def gauge_range(self, name: str, stack: str, by: tuple[str, ...], start: float, end: float,
                    step_s: float) -> dict[Key, list[tuple[float, float]]]: ...


def fold_histogram(buckets: dict[Key, float], sums: dict[Key, float],
                   counts: dict[Key, float]) -> dict[Key, HistogramDelta]:
    """Bucket increases keyed (*by, le) plus sums and counts keyed by -> one delta per key."""
    out: dict[Key, HistogramDelta] = {}
    for key, value in buckets.items():
        *group, le = key
        out.setdefault(tuple(group), HistogramDelta()).buckets[float(le)] = value
    for key, value in sums.items():
        out.setdefault(key, HistogramDelta()).sum = value
    for key, value in counts.items():
        out.setdefault(key, HistogramDelta()).count = value
    return out


class PromQLSource:
    """Answers through PromQL on the local Prometheus."""

    kind = "prometheus"

    def __init__(self, server: PrometheusServer) -> None:
        self.server = server
        self.queries: list[dict] = []  # every query and its raw answer, saved with the report

    def _vector(self, expr: str, at: float, by: tuple[str, ...]) -> dict[Key, float]:
        raw = self.server.query_raw(expr, at)
        self.queries.append({"expr": expr, "time": at, "answer": raw})
        from loadtests.prometheus import parse_vector

        return {tuple(s.labels.get(b, "") for b in by): s.value
                for s in parse_vector(raw) if not math.isnan(s.value)}

    def counter_increase(self, name: str, stack: str, by: tuple[str, ...], start: float,
                         end: float) -> dict[Key, float]:
        group = ", ".join(by)
        expr = (f'sum by ({group}) (increase({name}{{stack="{stack}"}}[{window(start, end)}]))'
                if by else f'sum (increase({name}{{stack="{stack}"}}[{window(start, end)}]))')
        return self._vector(expr, end, by)

    def histogram(self, name: str, stack: str, by: tuple[str, ...], start: float,
                  end: float) -> dict[Key, HistogramDelta]:
        buckets = self.counter_increase(f"{name}_bucket", stack, (*by, "le"), start, end)
        sums = self.counter_increase(f"{name}_sum", stack, by, start, end)
        counts = self.counter_increase(f"{name}_count", stack, by, start, end)
        return fold_histogram(buckets, sums, counts)

    def gauge_range(self, name: str, stack: str, by: tuple[str, ...], start: float, end: float,
                    step_s: float) -> dict[Key, list[tuple[float, float]]]:
        group = ", ".join(by)
        expr = f'sum by ({group}) ({name}{{stack="{stack}"}})'
        raw = self.server.query_range_raw(expr, start, end, step_s)
        self.queries.append({"expr": expr, "start": start, "end": end, "step": step_s,
                             "answer": raw})
        from loadtests.prometheus import parse_matrix

        return {tuple(s.labels.get(b, "") for b in by): s.points for s in parse_matrix(raw)}

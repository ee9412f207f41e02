"""Server-side figures of one load window, asked of Prometheus (PromQL) or of the fallback scraper.

The harness asks three kinds of question, and both sources answer them the same way:
- how much a counter grew in a window, summed by some labels (`counter_increase`);
- a histogram's growth in a window (buckets, sum, count), from which quantiles and means are
  computed here with Prometheus's own `histogram_quantile` interpolation;
- a gauge over time, summed by some labels (`gauge_range`), for queue depth and in-flight plots.
Everything is filtered on the contract's `stack` label, so one Prometheus holds all stacks, and,
where the harness names one, on the scrape `job` too: both KServe topologies carry
`stack="kserve"`, and only the job (`kserve` or `kserve-orchestrated`) tells their series apart.
`server_figures` asks them for one stack's run: whole run, per phase, and time series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from loadtests.prometheus import PrometheusServer, window

Key = tuple[str, ...]
# Queue depth is sampled at one period for every stack: Ray's replicas export their gauges every
# metrics_report_interval_ms (10 s by default), KServe's servers are scraped every 2 s; a max over
# 2 s samples against one over 10 s samples is not like for like, so both are read at 10 s.
QUEUE_SAMPLE_PERIOD_S = 10.0


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
                         end: float, job: str | None = None) -> dict[Key, float]: ...

    def histogram(self, name: str, stack: str, by: tuple[str, ...], start: float,
                  end: float, job: str | None = None) -> dict[Key, HistogramDelta]: ...

    def gauge_range(self, name: str, stack: str, by: tuple[str, ...], start: float, end: float,
                    step_s: float, job: str | None = None
                    ) -> dict[Key, list[tuple[float, float]]]: ...


def selector(stack: str, job: str | None = None) -> str:
    """The label matchers of one run's series: `stack="kserve",job="kserve-orchestrated"`."""
    return f'stack="{stack}"' + (f',job="{job}"' if job else "")


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
                         end: float, job: str | None = None) -> dict[Key, float]:
        series = f"{name}{{{selector(stack, job)}}}[{window(start, end)}]"
        expr = (f"sum by ({', '.join(by)}) (increase({series}))" if by
                else f"sum (increase({series}))")
        return self._vector(expr, end, by)

    def histogram(self, name: str, stack: str, by: tuple[str, ...], start: float,
                  end: float, job: str | None = None) -> dict[Key, HistogramDelta]:
        buckets = self.counter_increase(f"{name}_bucket", stack, (*by, "le"), start, end, job)
        sums = self.counter_increase(f"{name}_sum", stack, by, start, end, job)
        counts = self.counter_increase(f"{name}_count", stack, by, start, end, job)
        return fold_histogram(buckets, sums, counts)

    def gauge_range(self, name: str, stack: str, by: tuple[str, ...], start: float, end: float,
                    step_s: float, job: str | None = None
                    ) -> dict[Key, list[tuple[float, float]]]:
        group = ", ".join(by)
        expr = f"sum by ({group}) ({name}{{{selector(stack, job)}}})"
        raw = self.server.query_range_raw(expr, start, end, step_s)
        self.queries.append({"expr": expr, "start": start, "end": end, "step": step_s,
                             "answer": raw})
        from loadtests.prometheus import parse_matrix

        return {tuple(s.labels.get(b, "") for b in by): s.points for s in parse_matrix(raw)}


def server_figures(source: ServerSideSource, stack: str, windows: list[dict[str, Any]],
                run_start: float, run_end: float, step_s: float,
                queue_step_s: float | None = None, job: str | None = None) -> dict[str, Any]:
    """The Prometheus figures of one stack: whole run, per phase, and time series.

    `queue_step_s`: the sampling period of the queue-depth maxima (the same for every stack).
    `job`: only the series of this scrape job (the run's own targets), when the store knows it.
    """
    queue_step = queue_step_s or step_s

    def hist_summary(name: str, by: tuple[str, ...], start: float, end: float):
        out = {}
        for key, h in source.histogram(name, stack, by, start, end, job).items():
            out["/".join(key) or "all"] = {"count": h.count, "mean_s": h.mean,
                                           "p50_s": h.quantile(0.5), "p95_s": h.quantile(0.95),
                                           "p99_s": h.quantile(0.99)}
        return out

    def counters(name: str, by: tuple[str, ...], start: float, end: float):
        return {"/".join(k) or "all": v
                for k, v in source.counter_increase(name, stack, by, start, end, job).items()}

    def gauge_max(name: str, by: tuple[str, ...], start: float, end: float, step: float):
        series = source.gauge_range(name, stack, by, start, end, step, job)
        return {"/".join(k): max((v for _, v in pts), default=0.0) for k, pts in series.items()}

    phases = {}
    for w in windows:
        start, end = w["server_start"], w["server_end"]
        duration = max(end - start, 1e-9)
        tokens = counters("pipeline_generated_tokens_total", (), start, end)
        phases[w["phase"]] = {
            "window": [start, end],
            "stage_seconds": hist_summary("pipeline_stage_seconds", ("stage",), start, end),
            "hop_seconds": hist_summary("pipeline_hop_seconds", ("stage",), start, end),
            "request_seconds": hist_summary("pipeline_request_seconds", (), start, end),
            "requests_by_status": counters("pipeline_requests_total", ("status",), start, end),
            "generated_tokens_per_s": tokens.get("all", 0.0) / duration,
            "max_queue_depth": gauge_max("pipeline_generation_queue_depth", ("tier",),
                                         start, end, queue_step),
            "max_inflight": gauge_max("pipeline_stage_inflight", ("stage",), start, end,
                                      step_s),
        }
    return {
        "window": [run_start, run_end], "queue_sample_period_s": queue_step,
        "stage_seconds": hist_summary("pipeline_stage_seconds", ("stage",), run_start, run_end),
        "hop_seconds": hist_summary("pipeline_hop_seconds", ("stage",), run_start, run_end),
        "request_seconds": hist_summary("pipeline_request_seconds", (), run_start, run_end),
        "ttft_seconds": hist_summary("pipeline_time_to_first_token_seconds", (), run_start,
                                     run_end),
        "tpot_seconds": hist_summary("pipeline_time_per_output_token_seconds", (), run_start,
                                     run_end),
        "requests_by_status": counters("pipeline_requests_total", ("status",), run_start,
                                       run_end),
        "generated_tokens": counters("pipeline_generated_tokens_total", (), run_start, run_end),
        "prompt_tokens": counters("pipeline_prompt_tokens_total", (), run_start, run_end),
        "phases": phases,
        "series": {
            "queue_depth": {"/".join(k): v for k, v in source.gauge_range(
                "pipeline_generation_queue_depth", stack, ("tier",), run_start, run_end,
                step_s, job).items()},
            "inflight": {"/".join(k): v for k, v in source.gauge_range(
                "pipeline_stage_inflight", stack, ("stage",), run_start, run_end,
                step_s, job).items()},
        },
    }

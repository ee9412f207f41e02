"""The metric contract of DESIGN.md, defined once, and the recorder both stacks call.

`METRICS` is the table (name, type, labels, buckets). A stack turns it into instruments of its own
library through a factory: `prometheus_instruments` here (KServe and the in-process runner), and
`ray.serve.metrics` in `rayserve_impl`. `PipelineMetrics` records through either, so the numbers
mean the same thing in both stacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from shared_pipeline.schemas import PipelineState

Kind = Literal["counter", "histogram", "gauge"]

# Seconds. Fine enough that a quantile interpolated inside a bucket is near the truth on both
# ends of the range the report compares: a GPU answers in tens of ms (steps of ~1.5x there), a
# loaded 2-core CPU in up to ~60 s (steps of 5-10 s there). Coarse buckets made a p95 of
# "18,000 ms" out of requests none of which took over 13.2 s (issue 13).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                     0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0,
                     6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0,
                     120.0)
TTFT_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                  1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0)
TPOT_BUCKETS_S = (0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06,
                  0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the exposed name; counters end in _total
    kind: Kind
    labels: tuple[str, ...]
    doc: str
    buckets: tuple[float, ...] | None = None

    @property
    def base_name(self) -> str:
        """The name to register: client libraries append `_total` to counters themselves."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("pipeline_requests_total", "counter", ("stack", "tier", "status"),
               "Finished requests by status (ok, client_error, server_error, rejected)."),
    MetricSpec("pipeline_request_seconds", "histogram", ("stack", "tier"),
               "First-stage entry to last-stage exit.", LATENCY_BUCKETS_S),
    MetricSpec("pipeline_stage_seconds", "histogram", ("stack", "stage"),
               "Time inside one stage.", LATENCY_BUCKETS_S),
    MetricSpec("pipeline_hop_seconds", "histogram", ("stack", "stage"),
               "Previous stage exit to this stage entry: transport, routing and queueing.",
               LATENCY_BUCKETS_S),
    MetricSpec("pipeline_stage_inflight", "gauge", ("stack", "stage"),
               "Requests inside the stage now."),
    MetricSpec("pipeline_generation_queue_depth", "gauge", ("stack", "tier"),
               "Requests waiting inside the generator (batcher or engine queue)."),
    MetricSpec("pipeline_time_to_first_token_seconds", "histogram", ("stack", "tier"),
               "Generator entry to the first generated token.", TTFT_BUCKETS_S),
    MetricSpec("pipeline_time_per_output_token_seconds", "histogram", ("stack", "tier"),
               "Decode time / (tokens - 1).", TPOT_BUCKETS_S),
    MetricSpec("pipeline_prompt_tokens_total", "counter", ("stack", "tier"), "Prompt tokens."),
    MetricSpec("pipeline_generated_tokens_total", "counter", ("stack", "tier"),
               "Generated tokens."),
    MetricSpec("pipeline_revision_info", "gauge", ("stack", "stage", "revision"),
               "Which revision each stage runs (value 1)."),
)


class Instrument(Protocol):
    """The one call shape the recorder needs; `ray.serve.metrics` already has it (counters
    `inc`, gauges `set`, histograms `observe`)."""

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None: ...
    def set(self, value: float, tags: dict[str, str] | None = None) -> None: ...
    def observe(self, value: float, tags: dict[str, str] | None = None) -> None: ...


InstrumentFactory = Callable[[MetricSpec], Instrument]


class _PrometheusInstrument:
    """Adapts a labelled prometheus_client metric to the `Instrument` call shape."""

    def __init__(self, metric) -> None:
        self._metric = metric

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self._metric.labels(**(tags or {})).inc(value)

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._metric.labels(**(tags or {})).set(value)

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._metric.labels(**(tags or {})).observe(value)


_PROMETHEUS_CACHE: dict[tuple[int, str], _PrometheusInstrument] = {}


def prometheus_instruments(registry=None) -> InstrumentFactory:
    """A factory registering the contract in a prometheus_client registry (default: global).

    Registration is idempotent per registry: several models in one KServe server share one set.
    """
    import prometheus_client as prom

    registry = registry if registry is not None else prom.REGISTRY
    classes = {"counter": prom.Counter, "gauge": prom.Gauge, "histogram": prom.Histogram}

    def make(spec: MetricSpec) -> Instrument:
        key = (id(registry), spec.name)
        if key not in _PROMETHEUS_CACHE:
            kwargs = {"buckets": spec.buckets} if spec.buckets else {}
            metric = classes[spec.kind](spec.base_name, spec.doc, list(spec.labels),
                                        registry=registry, **kwargs)
            _PROMETHEUS_CACHE[key] = _PrometheusInstrument(metric)
        return _PROMETHEUS_CACHE[key]

    return make


def status_of(http_status: int) -> str:
    """The `status` label for an HTTP status code."""
    if http_status < 400:
        return "ok"
    if http_status in (429, 503):
        return "rejected"
    return "client_error" if http_status < 500 else "server_error"


class PipelineMetrics:
    """Records the contract for one stack; every stage of every stack goes through here."""

    def __init__(self, stack: str, factory: InstrumentFactory) -> None:
        self.stack = stack
        self._m = {spec.name: factory(spec) for spec in METRICS}
        self._inflight: dict[str, int] = {}  # gauges are set, not incremented: Ray's have no inc
        self._revisions: dict[str, str] = {}  # stage -> the revision it runs here (stamped)

    def _count(self, name: str, value: float, tags: dict[str, str]) -> None:
        if value > 0:  # Ray counters refuse non-positive increments
            self._m[name].inc(value, tags)

    def revision(self, stage: str, revision: str, previous: str | None = None) -> None:
        """Mark `revision` as the one `stage` runs; an in-place change zeroes the `previous`."""
        info = self._m["pipeline_revision_info"]
        self._revisions[stage] = revision
        if previous and previous != revision:
            info.set(0, {"stack": self.stack, "stage": stage, "revision": previous})
        info.set(1, {"stack": self.stack, "stage": stage, "revision": revision})

    @contextmanager
    def stage(self, state: PipelineState, stage: str) -> Iterator[None]:
        """Stamp `state` with this stage's entry, exit and revision; record stage, hop and
        in-flight. The revision is per stage: during a KServe canary, one request may pass an
        old-revision retriever and a new-revision generator, and the answer says so."""
        from shared_pipeline.schemas import StageStamp

        tags = {"stack": self.stack, "stage": stage}
        stamp = StageStamp(stage=stage, start=time.time(),
                           revision=self._revisions.get(stage, ""))
        previous_exit = state.last_exit()
        if previous_exit is not None:
            self._m["pipeline_hop_seconds"].observe(max(0.0, stamp.start - previous_exit), tags)
        inflight = self._m["pipeline_stage_inflight"]
        self._inflight[stage] = self._inflight.get(stage, 0) + 1
        inflight.set(self._inflight[stage], tags)
        try:
            yield
        finally:
            self._inflight[stage] -= 1
            inflight.set(self._inflight[stage], tags)
            stamp.end = time.time()
            state.timings.append(stamp)
            self._m["pipeline_stage_seconds"].observe(stamp.end - stamp.start, tags)

    def queue_depth(self, tier: str, depth: int) -> None:
        self._m["pipeline_generation_queue_depth"].set(depth, {"stack": self.stack, "tier": tier})

    def generation(self, tier: str, prompt_tokens: int, completion_tokens: int,
                   ttft_s: float | None, total_s: float) -> None:
        tags = {"stack": self.stack, "tier": tier}
        self._count("pipeline_prompt_tokens_total", prompt_tokens, tags)
        self._count("pipeline_generated_tokens_total", completion_tokens, tags)
        if ttft_s is not None:
            self._m["pipeline_time_to_first_token_seconds"].observe(ttft_s, tags)
            if completion_tokens > 1:
                self._m["pipeline_time_per_output_token_seconds"].observe(
                    max(0.0, total_s - ttft_s) / (completion_tokens - 1), tags)

    def finished(self, state: PipelineState | None, http_status: int) -> None:
        """Count a finished request; a successful one also records its end-to-end latency."""
        tier = (state.tier if state else None) or "none"
        tags = {"stack": self.stack, "tier": tier}
        self._count("pipeline_requests_total", 1, {**tags, "status": status_of(http_status)})
        if state is not None and http_status < 400 and state.timings:
            end = state.last_exit() or time.time()
            self._m["pipeline_request_seconds"].observe(end - state.timings[0].start, tags)

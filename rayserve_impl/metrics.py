"""The metric contract through `ray.serve.metrics`, so Ray's exporter serves it.

Ray's Prometheus exporter prefixes every application metric with `ray_` and appends `_total` to
counters itself, so counters are registered under their base name (`pipeline_requests` ->
`ray_pipeline_requests_total`); the shipped PodMonitor / Prometheus config strip the `ray_`
prefix, leaving the same `pipeline_*` families the KServe stack exports. Serve adds its own
`deployment`, `replica` and `application` tags (reserved names: hence `tier`, never `route`).

Gauges are re-set every few seconds (`GaugeRefresher`): on Ray 2.60 a worker exports a gauge
value only in the interval it was set in, and the metrics agent drops a series not refreshed for
two export intervals (~20 s), so a gauge set once (`pipeline_revision_info`) or idle (queue depth
0) would vanish from /metrics, as seen here. The refresh keeps the last value of every series.
"""

from __future__ import annotations

import threading
import time

from ray.serve import metrics as serve_metrics

from shared_pipeline.metrics import Instrument, MetricSpec, PipelineMetrics

STACK = "rayserve"
GAUGE_REFRESH_S = 5.0  # well inside the agent's ~20 s gauge TTL


class GaugeRefresher:
    """Re-sets the last value of every gauge series of this process, from one daemon thread."""

    def __init__(self, period_s: float = GAUGE_REFRESH_S) -> None:
        self._period_s = period_s
        self._values: dict[tuple[int, frozenset], tuple[serve_metrics.Gauge, float, dict]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def remember(self, gauge: serve_metrics.Gauge, value: float,
                 tags: dict[str, str] | None) -> None:
        with self._lock:
            self._values[(id(gauge), frozenset((tags or {}).items()))] = (gauge, value, tags)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gauge-refresh",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._period_s)
            with self._lock:
                series = list(self._values.values())
            for gauge, value, tags in series:
                gauge.set(value, tags=tags)


_REFRESHER = GaugeRefresher()


class _RayInstrument:
    """Adapts one `ray.serve.metrics` metric to the `Instrument` call shape."""

    def __init__(self, metric: serve_metrics.Counter | serve_metrics.Gauge
                 | serve_metrics.Histogram) -> None:
        self._metric = metric

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self._metric.inc(value, tags=tags)

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._metric.set(value, tags=tags)
        _REFRESHER.remember(self._metric, value, tags)

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self._metric.observe(value, tags=tags)


def ray_instrument(spec: MetricSpec) -> Instrument:
    """One contract metric as a Serve metric (same name, labels and buckets as the contract)."""
    tag_keys = tuple(spec.labels)
    if spec.kind == "counter":
        metric = serve_metrics.Counter(spec.base_name, description=spec.doc, tag_keys=tag_keys)
    elif spec.kind == "gauge":
        metric = serve_metrics.Gauge(spec.name, description=spec.doc, tag_keys=tag_keys)
    else:
        metric = serve_metrics.Histogram(spec.name, description=spec.doc,
                                         boundaries=list(spec.buckets or ()), tag_keys=tag_keys)
    return _RayInstrument(metric)


def pipeline_metrics() -> PipelineMetrics:
    """The recorder every deployment of this stack uses (call it inside a replica)."""
    return PipelineMetrics(STACK, ray_instrument)

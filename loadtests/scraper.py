"""The fallback when no `prometheus` binary is installed: poll every /metrics ourselves.

It keeps each poll's samples in memory and answers the same three questions as
`serverside.PromQLSource`, applying the same `ray_` prefix rule as the shipped scrape config.
Increases are exact differences between the samples at the window's ends (Prometheus
extrapolates a little instead), so the two sources agree to within a scrape interval. Each
sample gets its target's `job` label, as Prometheus attaches it. The report says which source
was used.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtests.prometheus import RAY_PREFIX_REGEX
from loadtests.serverside import HistogramDelta, Key, fold_histogram

_RAY = re.compile(f"^{RAY_PREFIX_REGEX}$")
SeriesId = tuple[str, str, tuple[tuple[str, str], ...]]  # target, sample name, sorted labels
Sample = tuple[str, dict[str, str], float]  # name (Ray's prefix stripped), labels, value


def parse_exposition(text: str) -> list[Sample]:
    """(name, labels, value) of every pipeline sample, with Ray's prefix stripped."""
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = _RAY.sub(r"\1", sample.name)
            if name.startswith("pipeline_"):
                out.append((name, dict(sample.labels), float(sample.value)))
    return out


def scrape(client: httpx.Client, urls: list[str],
           errors: dict[str, str] | None = None) -> Iterator[tuple[str, float, list[Sample]]]:
    """One pass over `urls`: (url, when, pipeline samples) for each that answered; a failure is
    noted in `errors` (by URL) and skipped. The only /metrics poll in the harness: the fallback
    scraper and the experiments' timeline both go through it."""
    for url in urls:
        now = time.time()
        try:
            samples = parse_exposition(client.get(url).text)
        except (httpx.HTTPError, ValueError) as exc:
            if errors is not None:
                errors[url] = str(exc)
            continue
        yield url, now, samples


class FallbackScraper:
    """Polls targets every `interval_s` in a thread; `targets` may change while it runs."""

    kind = "fallback-scraper"

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self.targets: dict[str, list[str]] = {}  # job -> metrics URLs
        self._series: dict[SeriesId, tuple[list[float], list[float]]] = defaultdict(
            lambda: ([], []))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}

    def set_targets(self, job: str, urls: list[str]) -> None:
        with self._lock:
            self.targets[job] = list(urls)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def scrape_once(self) -> None:
        with self._lock:
            job_of = {u: job for job, us in self.targets.items() for u in us}
        with httpx.Client(timeout=self.interval_s) as client:
            for url, now, samples in scrape(client, list(job_of), self.errors):
                with self._lock:
                    for name, labels, value in samples:
                        labels = {**labels, "job": job_of[url]}  # the target's, as Prometheus
                        times, values = self._series[(url, name, tuple(sorted(labels.items())))]
                        times.append(now)
                        values.append(value)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.scrape_once()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    # ------------------------------------------------------------ the ServerSideSource answers
    def _matching(self, name: str, stack: str, job: str | None):
        with self._lock:
            items = [(sid, (list(t), list(v))) for sid, (t, v) in self._series.items()
                     if sid[1] == name]
        for (_, _, labels), tv in items:
            labels_d = dict(labels)
            if labels_d.get("stack") == stack and job in (None, labels_d.get("job")):
                yield labels_d, tv

    @staticmethod
    def _at(times: list[float], values: list[float], at: float) -> float | None:
        i = bisect.bisect_right(times, at)
        return values[i - 1] if i else None

    def counter_increase(self, name: str, stack: str, by: tuple[str, ...], start: float,
                         end: float, job: str | None = None) -> dict[Key, float]:
        out: dict[Key, float] = defaultdict(float)
        for labels, (times, values) in self._matching(name, stack, job):
            last = self._at(times, values, end)
            if last is None:
                continue
            first = self._at(times, values, start) or 0.0  # a series born inside the window
            out[tuple(labels.get(b, "") for b in by)] += max(0.0, last - first)
        return dict(out)

    def histogram(self, name: str, stack: str, by: tuple[str, ...], start: float,
                  end: float, job: str | None = None) -> dict[Key, HistogramDelta]:
        return fold_histogram(
            self.counter_increase(f"{name}_bucket", stack, (*by, "le"), start, end, job),
            self.counter_increase(f"{name}_sum", stack, by, start, end, job),
            self.counter_increase(f"{name}_count", stack, by, start, end, job))

    def gauge_range(self, name: str, stack: str, by: tuple[str, ...], start: float, end: float,
                    step_s: float, job: str | None = None
                    ) -> dict[Key, list[tuple[float, float]]]:
        series = list(self._matching(name, stack, job))
        out: dict[Key, list[tuple[float, float]]] = {}
        steps = [start + k * step_s for k in range(int((end - start) / step_s) + 1)]
        if not steps or steps[-1] < end - 1e-6:
            steps.append(end)  # always answer for the window's end too
        for t in steps:
            sums: dict[Key, float] = defaultdict(float)
            seen: set[Key] = set()
            for labels, (times, values) in series:
                value = self._at(times, values, t)
                if value is not None:
                    key = tuple(labels.get(b, "") for b in by)
                    sums[key] += value
                    seen.add(key)
            for key in seen:
                out.setdefault(key, []).append((t, sums[key]))
        return out

"""An experiment's timeline: once a second, the stack's replica counts (from its control) and
its generator queue depth and per-stage in-flight requests (from /metrics, through the same
`scraper.scrape` poll the fallback scraper uses), appended to `timeline.jsonl` as it goes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from loadtests.scraper import scrape
from shared_pipeline.control import StackControl

# metric -> (timeline key, the label it is summed by)
WANTED = {"pipeline_generation_queue_depth": ("queue_depth", "tier"),
          "pipeline_stage_inflight": ("inflight", "stage")}


def sample_metrics(client: httpx.Client, urls: list[str]) -> dict[str, dict[str, float]]:
    """Generation queue depth by tier and in-flight requests by stage, summed over endpoints
    (Ray exports every ~10 s, so its samples lag)."""
    out: dict[str, dict[str, float]] = {"queue_depth": {}, "inflight": {}}
    for _, _, samples in scrape(client, urls):  # Ray's `ray_` prefix stripped
        for name, labels, value in samples:
            if name in WANTED:
                key, label = WANTED[name]
                tag = labels.get(label, "")
                out[key][tag] = out[key].get(tag, 0.0) + value
    return out


class Sampler:
    """Samples the control's replica counts and the metrics once a second, in a thread."""

    def __init__(self, control: StackControl, path: Path, interval_s: float = 1.0) -> None:
        self.control, self.path, self.interval_s = control, path, interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self.path.open("a", encoding="utf-8") as fh, \
                httpx.Client(timeout=self.interval_s) as client:
            while not self._stop.is_set():
                started = time.time()
                try:
                    sample = {"t": started, "replicas": self.control.replicas(),
                              **sample_metrics(client, self.control.metrics_urls())}
                except Exception as exc:  # a sample lost is noted, the experiment goes on
                    sample = {"t": started, "error": f"{type(exc).__name__}: {exc}"}
                self.samples.append(sample)
                fh.write(json.dumps(sample) + "\n")
                fh.flush()
                self._stop.wait(max(0.0, self.interval_s - (time.time() - started)))

    def latest(self) -> dict[str, Any]:
        return self.samples[-1] if self.samples else {}

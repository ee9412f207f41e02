"""The harness's metrics store: a real Prometheus (reloaded as stacks come up), or the fallback
scraper when the binary is missing; both fed by a real prometheus_client endpoint."""

from __future__ import annotations

import shutil
import time

import pytest
from rich.console import Console

from loadtests.metrics_store import metrics_store
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.schemas import ChatCompletionRequest, PipelineState


def finish(metrics: PipelineMetrics, n: int) -> None:
    for _ in range(n):
        state = PipelineState.start(ChatCompletionRequest(messages=[{"role": "user",
                                                                     "content": "hi"}]))
        state.tier = "small"
        with metrics.stage(state, "route"):
            pass
        metrics.finished(state, 200)


def until(check, timeout_s: float = 30.0) -> bool:
    """Poll `check` until it holds or `timeout_s` passes (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_fallback_scraper_when_prometheus_is_missing(endpoint, tmp_path, monkeypatch):
    metrics, url = endpoint
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus binary on PATH
    console = Console(record=True, width=200)
    with metrics_store(tmp_path, 0.1, console) as store:
        assert store.prometheus is None and store.source.kind == "fallback-scraper"
        assert "scraped /metrics itself" in store.note
        finish(metrics, 1)
        assert store.add_stack("inprocess", [url])

        def ok_since(start: float) -> dict:
            return store.source.counter_increase("pipeline_requests_total", "inprocess",
                                                 ("status",), start, time.time())

        # Wait for scrapes, not for a fixed time: a busy machine may scrape late.
        assert until(lambda: ok_since(0.0) == {("ok",): 1.0})  # the baseline sample
        start = time.time()
        finish(metrics, 3)
        assert until(lambda: ok_since(start) == {("ok",): 3.0}), ok_since(start)
    assert "prometheus is not installed" in console.export_text()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_prometheus_is_reloaded_with_each_stack_and_answers_promql(endpoint, tmp_path):
    metrics, url = endpoint
    finish(metrics, 1)
    with metrics_store(tmp_path, 0.5, Console(width=200)) as store:
        assert store.source.kind == "prometheus"
        assert store.add_stack("inprocess", [url])  # config rewritten, reloaded, scraped
        start = time.time()
        finish(metrics, 4)

        def total_now() -> float:
            answer = store.prometheus.query('sum(pipeline_requests_total{stack="inprocess"})')
            return answer[0].value if answer else 0.0

        assert until(lambda: total_now() == 5)  # scraped after the requests, however late
        end = time.time()
        increase = store.source.counter_increase("pipeline_requests_total", "inprocess",
                                                 ("status",), start - 1, end)
        hist = store.source.histogram("pipeline_stage_seconds", "inprocess", ("stage",),
                                      start - 1, end)
        # the run's own scrape job selects its series; another job's (the other KServe
        # topology's, which shares the stack label) does not
        of_job = {job: store.source.counter_increase(
            "pipeline_requests_total", "inprocess", (), start - 1, end, job=store.job_filter(job))
            for job in ("inprocess", "kserve-orchestrated")}
        config = store.config_path.read_text()
    assert increase[("ok",)] > 0  # increase() extrapolates over so short a window
    assert of_job["inprocess"][()] > 0 and of_job["kserve-orchestrated"] == {}
    assert hist[("route",)].count > 0
    assert url.removeprefix("http://").removesuffix("/metrics") in config
    assert "ray_(pipeline_.*)" in config
    assert store.source.queries  # every query kept for raw/promql.json

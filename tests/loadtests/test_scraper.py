"""The fallback scraper against a real prometheus_client endpoint (no Prometheus needed)."""

from __future__ import annotations

import math
import time

import httpx
import pytest

from loadtests.scraper import FallbackScraper, parse_exposition
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.schemas import ChatCompletionRequest, PipelineState


def test_exposition_parsing_strips_rays_prefix_and_skips_other_metrics():
    text = ('# TYPE ray_pipeline_requests_total counter\n'
            'ray_pipeline_requests_total{stack="rayserve",status="ok",tier="small"} 3\n'
            '# TYPE ray_serve_num_http_requests_total counter\n'
            'ray_serve_num_http_requests_total{route="/"} 9\n')
    assert parse_exposition(text) == [
        ("pipeline_requests_total", {"stack": "rayserve", "status": "ok", "tier": "small"}, 3.0)]


def _request(metrics: PipelineMetrics, seconds: float) -> None:
    state = PipelineState.start(ChatCompletionRequest(messages=[{"role": "user",
                                                                 "content": "hi"}]))
    state.tier = "small"
    for stage in ("retrieve", "generate"):
        with metrics.stage(state, stage):
            if stage == "generate":
                time.sleep(seconds)
    metrics.finished(state, 200)


def _generate_totals(url: str) -> tuple[float, float]:
    """(sum, count) of pipeline_stage_seconds{stage="generate"} as the endpoint exposes it now."""
    samples = parse_exposition(httpx.get(url).text)
    return tuple(next(v for name, labels, v in samples
                      if name == f"pipeline_stage_seconds_{part}" and labels["stage"] == "generate")
                 for part in ("sum", "count"))


def test_scraper_answers_increases_quantiles_and_gauges(endpoint):
    metrics, url = endpoint
    _request(metrics, 0.0)  # the series exist before the window, as after a warm-up
    scraper = FallbackScraper(interval_s=0.2)
    scraper.set_targets("inprocess", [url])
    scraper.scrape_once()
    sum_before, count_before = _generate_totals(url)
    start = time.time()
    metrics.queue_depth("small", 3)
    for _ in range(4):
        _request(metrics, 0.03)
    metrics.queue_depth("small", 0)
    time.sleep(0.01)
    scraper.scrape_once()
    end = time.time()

    assert scraper.counter_increase("pipeline_requests_total", "inprocess", ("status",),
                                    start, end) == {("ok",): 4.0}
    assert scraper.counter_increase("pipeline_requests_total", "rayserve", (), start, end) == {}
    hist = scraper.histogram("pipeline_stage_seconds", "inprocess", ("stage",), start, end)
    generate = hist[("generate",)]
    assert generate.count == 4 and generate.buckets[math.inf] == 4
    # What the endpoint itself counted (a sleep of 30 ms lasts at least that, and on a busy
    # machine longer: no upper bound on wall time is asserted, only agreement with the source).
    sum_after, count_after = _generate_totals(url)
    assert generate.mean == pytest.approx((sum_after - sum_before) / (count_after - count_before))
    assert generate.mean >= 0.03
    median_bucket = min(le for le, n in generate.buckets.items() if n >= 2)
    assert 0.025 <= generate.quantile(0.5) <= median_bucket  # interpolated inside its bucket
    series = scraper.gauge_range("pipeline_generation_queue_depth", "inprocess", ("tier",),
                                 start - 1, end, 0.5)
    assert series[("small",)][-1][1] == 0.0


def test_scraper_thread_polls_until_stopped(endpoint):
    metrics, url = endpoint
    _request(metrics, 0.0)
    scraper = FallbackScraper(interval_s=0.1)
    scraper.set_targets("inprocess", [url, "http://127.0.0.1:9/metrics"])  # one dead target
    scraper.start()

    def seen() -> dict:
        now = time.time()
        return scraper.counter_increase("pipeline_requests_total", "inprocess", (), now - 60, now)

    deadline = time.monotonic() + 30  # wait for the thread's scrapes, however late they come
    while not (seen() and "http://127.0.0.1:9/metrics" in scraper.errors) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    scraper.stop()
    assert "http://127.0.0.1:9/metrics" in scraper.errors
    assert seen() == {(): 1.0}


def test_samples_carry_their_targets_job_and_a_job_selects_one_runs_series(endpoint):
    """Both KServe topologies label their series stack="kserve"; the scrape job (as Prometheus
    attaches it) is what keeps the orchestrated run's figures apart from the graph's."""
    metrics, url = endpoint
    _request(metrics, 0.0)
    scraper = FallbackScraper(interval_s=0.2)
    scraper.set_targets("kserve-orchestrated", [url])
    scraper.scrape_once()
    start = time.time()
    _request(metrics, 0.0)
    scraper.scrape_once()
    end = time.time()
    stack = metrics.stack
    assert scraper.counter_increase("pipeline_requests_total", stack, (), start, end,
                                    job="kserve-orchestrated") == {(): 1.0}
    assert scraper.counter_increase("pipeline_requests_total", stack, (), start, end,
                                    job="kserve") == {}
    assert scraper.counter_increase("pipeline_requests_total", stack, ("job",), start,
                                    end) == {("kserve-orchestrated",): 1.0}  # no job: any

"""The metric contract: every metric registered with its type, labels and buckets."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared_pipeline.config import Settings
from shared_pipeline.metrics import METRICS, PipelineMetrics, prometheus_instruments, status_of
from shared_pipeline.schemas import PipelineState, parse_chat_request

EXPECTED = {  # DESIGN.md's table, written out again on purpose: the test is the contract's copy
    "pipeline_requests_total": ("counter", {"stack", "tier", "status"}),
    "pipeline_request_seconds": ("histogram", {"stack", "tier"}),
    "pipeline_stage_seconds": ("histogram", {"stack", "stage"}),
    "pipeline_hop_seconds": ("histogram", {"stack", "stage"}),
    "pipeline_stage_inflight": ("gauge", {"stack", "stage"}),
    "pipeline_generation_queue_depth": ("gauge", {"stack", "tier"}),
    "pipeline_time_to_first_token_seconds": ("histogram", {"stack", "tier"}),
    "pipeline_time_per_output_token_seconds": ("histogram", {"stack", "tier"}),
    "pipeline_prompt_tokens_total": ("counter", {"stack", "tier"}),
    "pipeline_generated_tokens_total": ("counter", {"stack", "tier"}),
    "pipeline_revision_info": ("gauge", {"stack", "stage", "revision"}),
}


def record_one_request(registry: CollectorRegistry) -> PipelineMetrics:
    metrics = PipelineMetrics("inprocess", prometheus_instruments(registry))
    request = parse_chat_request({"messages": [{"role": "user", "content": "q"}]}, Settings())
    state = PipelineState.start(request)
    for stage in ("retrieve", "rerank", "route", "generate", "postprocess"):
        metrics.revision(stage, "a-1")
        with metrics.stage(state, stage):
            time.sleep(0.002)
    state.tier = "small"
    metrics.queue_depth("small", 2)
    metrics.generation("small", prompt_tokens=100, completion_tokens=11, ttft_s=0.05, total_s=0.55)
    metrics.finished(state, 200)
    return metrics


def families(registry: CollectorRegistry) -> dict:
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_contract_matches_design() -> None:
    assert {m.name: (m.kind, set(m.labels)) for m in METRICS} == EXPECTED


def test_every_metric_is_exposed_with_type_labels_and_buckets() -> None:
    registry = CollectorRegistry()
    record_one_request(registry)
    exposed = families(registry)
    for spec in METRICS:
        family = exposed[spec.base_name]  # the parser strips a counter's _total
        assert family.type == spec.kind, spec.name
        labels = {k for s in family.samples for k in s.labels if k not in {"le"}}
        assert labels == set(spec.labels), spec.name
        if spec.kind == "histogram":
            bounds = sorted({float(s.labels["le"]) for s in family.samples
                             if s.name.endswith("_bucket")})
            assert bounds == [*spec.buckets, float("inf")], spec.name


def test_recorded_values() -> None:
    registry = CollectorRegistry()
    record_one_request(registry)
    get = registry.get_sample_value
    assert get("pipeline_requests_total", {"stack": "inprocess", "tier": "small",
                                           "status": "ok"}) == 1
    assert get("pipeline_generated_tokens_total", {"stack": "inprocess", "tier": "small"}) == 11
    tpot = get("pipeline_time_per_output_token_seconds_sum",
               {"stack": "inprocess", "tier": "small"})
    assert abs(tpot - 0.05) < 1e-9  # (0.55 - 0.05) / (11 - 1)
    for stage in ("retrieve", "postprocess"):
        assert get("pipeline_stage_seconds_count", {"stack": "inprocess", "stage": stage}) == 1
        assert get("pipeline_stage_inflight", {"stack": "inprocess", "stage": stage}) == 0
    # the first stage has no previous exit, so no hop; every later stage has one
    assert get("pipeline_hop_seconds_count", {"stack": "inprocess", "stage": "retrieve"}) is None
    assert get("pipeline_hop_seconds_count", {"stack": "inprocess", "stage": "rerank"}) == 1
    assert get("pipeline_request_seconds_sum", {"stack": "inprocess", "tier": "small"}) >= 0.01


def test_status_labels() -> None:
    assert [status_of(c) for c in (200, 400, 404, 429, 503, 500)] == [
        "ok", "client_error", "client_error", "rejected", "rejected", "server_error"]


def test_a_new_revision_retires_the_previous_one() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics("rayserve", prometheus_instruments(registry))
    metrics.revision("route", "a-1")
    metrics.revision("route", "b-2", previous="a-1")
    get = registry.get_sample_value
    labels = {"stack": "rayserve", "stage": "route"}
    assert get("pipeline_revision_info", {**labels, "revision": "a-1"}) == 0
    assert get("pipeline_revision_info", {**labels, "revision": "b-2"}) == 1

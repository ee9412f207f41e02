"""PromQL answers recorded from a real Prometheus (fixtures/record_promql.py): parsing, and the
harness's histogram arithmetic checked against Prometheus's own histogram_quantile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadtests.prometheus import PromQLError, parse_matrix, parse_vector
from loadtests.serverside import HistogramDelta, fold_histogram, histogram_quantile

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "promql_answers.json").read_text())
ANSWERS = {name: a["answer"] for name, a in FIXTURE["answers"].items()}


def by_stage(name: str) -> dict[tuple[str, ...], float]:
    return {(s.labels["stage"],): s.value for s in parse_vector(ANSWERS[name])}


def stage_histograms() -> dict[tuple[str, ...], HistogramDelta]:
    buckets = {(s.labels["stage"], s.labels["le"]): s.value
               for s in parse_vector(ANSWERS["stage_buckets"])}
    return fold_histogram(buckets, by_stage("stage_sum"), by_stage("stage_count"))


def test_vector_answers_parse_into_labelled_samples():
    samples = parse_vector(ANSWERS["requests_by_status"])
    assert [s.labels for s in samples] == [{"status": "ok"}]
    assert samples[0].value > 0
    assert {k[0] for k in by_stage("stage_count")} == {
        "retrieve", "rerank", "route", "generate", "postprocess"}


def test_matrix_answers_parse_into_series():
    series = parse_matrix(ANSWERS["queue_depth_range"])
    assert series and series[0].labels == {"tier": "small"}
    times = [t for t, _ in series[0].points]
    assert times == sorted(times) and len(times) > 3
    assert max(v for _, v in series[0].points) >= 1  # a request waited in the generator


def test_errors_and_wrong_result_types_are_refused():
    with pytest.raises(PromQLError, match="bad_data"):
        parse_vector(ANSWERS["bad_query"])
    with pytest.raises(PromQLError, match="expected a vector"):
        parse_vector(ANSWERS["queue_depth_range"])


@pytest.mark.parametrize("q,name", [(0.95, "stage_p95"), (0.5, "stage_p50")])
def test_quantiles_match_prometheus_histogram_quantile(q, name):
    ours = {key: h.quantile(q) for key, h in stage_histograms().items()}
    theirs = by_stage(name)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-9), key


def test_means_and_counts_fold_from_sum_and_count():
    hists = stage_histograms()
    generate = hists[("generate",)]
    assert generate.count == pytest.approx(generate.buckets[math.inf])
    assert generate.mean == pytest.approx(by_stage("stage_sum")[("generate",)]
                                          / by_stage("stage_count")[("generate",)])


def test_histogram_quantile_edge_cases():
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {1.0: 3.0}) is None  # no +Inf bucket
    assert histogram_quantile(0.5, {1.0: 0.0, math.inf: 0.0}) is None
    # everything above the last finite bound: Prometheus answers that bound
    assert histogram_quantile(0.9, {1.0: 0.0, 2.0: 0.0, math.inf: 5.0}) == 2.0
    # linear inside the first bucket, from 0
    assert histogram_quantile(0.5, {1.0: 4.0, math.inf: 4.0}) == pytest.approx(0.5)

"""The report, plots and decision inputs with the extra `kserve-orchestrated` column (the demo
scenario's stacks), on hand-made results shaped like the harness's (test_report's `fake_result`):
it streams, so it has client TTFT/TPOT; its overhead is against the transformers reference's
streamed phase; its PromQL answers are told from the graph topology's by the scrape job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.decision.evidence import Figure, Missing, Report
from tests.loadtests.test_report import write_fake_report


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_report(tmp_path_factory.mktemp("report-orchestrated"), orchestrated=True)


def test_summary_gives_the_orchestrated_column_client_ttft_and_a_streamed_overhead(written):
    stacks = json.loads((written / "summary.json").read_text())["stacks"]
    assert list(stacks) == ["inprocess", "inprocess-vllm", "engine-alone", "kserve",
                            "kserve-orchestrated", "rayserve"]
    orch = stacks["kserve-orchestrated"]
    assert orch["e2e_p50_ms_low_load"] == pytest.approx(1070.0)
    assert orch["ttft_p50_ms_low_load"] == 300.0 and orch["tpot_p50_ms_low_load"] > 0
    # streamed like the reference's c1, on KServe's engine: (1050+20) - (1000+20)
    assert orch["overhead_reference"] == "inprocess"
    assert orch["overhead_reference_phase"] == "c1"
    assert orch["overhead_e2e_p50_ms_low_load"] == pytest.approx(50.0)
    assert orch["engine_alone_e2e_p50_ratio_low_load"] == pytest.approx(1070 / 820)
    # the graph topology is unchanged beside it: whole answers, against the whole phase
    assert stacks["kserve"]["ttft_p50_ms_low_load"] is None
    assert stacks["kserve"]["overhead_reference_phase"] == "c1-whole"


def test_markdown_and_html_hold_the_extra_column(written):
    md = (written / "report.md").read_text()
    page = (written / "index.html").read_text()
    headline = md.split("## Headline", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in headline.splitlines()
               if line.startswith("| kserve-orchestrated | "))
    assert "| transformers | yes |" in row and "300 [300–300]" in row  # streams: TTFT shown
    assert "50 ms vs inprocess (c1)" in row
    assert 'job="kserve-orchestrated"' in md  # how its server-side figures were selected
    assert "kserve-orchestrated's overhead is against `inprocess` (transformers), phase c1" in md
    assert "<td>kserve-orchestrated</td>" in page
    assert "`kserve-orchestrated` streams through its entry InferenceService" in md


def test_decision_inputs_take_the_orchestrated_runs_own_promql_answers(written, tmp_path):
    """Both topologies query stack="kserve"; each run's answers are the ones of its job."""
    def entry(expr: str, series: int) -> dict:
        return {"expr": expr, "time": 1.0, "answer": {"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {}, "value": [1.0, "1"]}] * series}}}
    raw = written / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "promql.json").write_text(json.dumps([
        entry('sum by (tier) (pipeline_generation_queue_depth{stack="kserve",job="kserve"})', 1),
        entry('sum by (tier) (pipeline_generation_queue_depth{stack="kserve",'
              'job="kserve-orchestrated"})', 0),
        entry('sum by (tier) (pipeline_generation_queue_depth{stack="rayserve"})', 1)]))
    try:
        rep = Report(written)
        assert rep.candidates() == ["kserve", "kserve-orchestrated", "rayserve"]
        graph, orch, ray = (rep.returned_data("pipeline_generation_queue_depth", s)
                            for s in rep.candidates())
        assert isinstance(graph, Figure) and graph.value is True
        assert graph.source == "raw/promql.json:[0].answer.data.result"
        assert isinstance(orch, Figure) and orch.value is False  # its own answer: empty
        assert orch.source == "raw/promql.json:[1].answer.data.result"
        assert isinstance(ray, Figure) and ray.source.startswith("raw/promql.json:[2]")
        unasked = rep.returned_data("pipeline_hop_seconds", "kserve-orchestrated")
        assert isinstance(unasked, Missing)
    finally:
        (raw / "promql.json").unlink()

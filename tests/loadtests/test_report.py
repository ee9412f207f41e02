"""The report writer on results shaped like the harness's (synthetic numbers, real rendering)."""

from __future__ import annotations

import json

import pytest

from loadtests import host, report, results, tables
from loadtests.measure import tpot_ms
from loadtests.scenarios import get_scenario, whole_reference_phase
from shared_pipeline.config import Settings
from shared_pipeline.schemas import STAGES

SCENARIO = get_scenario("smoke")


def fake_result(stack: str, e2e: float, streams: bool, engine: str, plan=SCENARIO.phases) -> dict:
    records = []
    for phase in plan:
        for i in range(5):
            ttft = 300.0 if streams else None
            records.append({"phase": phase.name, "sent": 1000.0 + i, "ok": True,
                            "e2e_ms": e2e + 10 * i, "ttft_ms": ttft,
                            "tpot_ms": tpot_ms(e2e + 10 * i, ttft, 16), "tokens": 16,
                            "tier": "small", "server_ms": {"generate": e2e - 50},
                            "hop_ms": 12.0 + i,
                            "error": None, "rejected": False})
        records.append({"phase": phase.name, "sent": 1001.0, "ok": False,
                        "error": "rejected 503: queue full", "rejected": True, "e2e_ms": 3.0})
    phases = [results.phase_stats(records, p, 1000.0, 1000.0 + p.duration_s) for p in plan]
    hist = {"count": 15.0, "mean_s": 0.02, "p50_s": 0.015, "p95_s": 0.04, "p99_s": 0.05}
    stages = {s: dict(hist) for s in STAGES}
    server = {"window": [1000.0, 1060.0], "stage_seconds": stages,
              "hop_seconds": {s: dict(hist) for s in STAGES[1:]},
              "request_seconds": {"all": hist}, "ttft_seconds": {"all": hist},
              "tpot_seconds": {"all": hist}, "requests_by_status": {"ok": 15.0, "rejected": 3.0},
              "generated_tokens": {"all": 240.0},
              "phases": {p.name: {"max_queue_depth": {"small": 2.0}} for p in SCENARIO.phases},
              "series": {"queue_depth": {"small": [(1000.0, 0.0), (1002.0, 2.0)]},
                         "inflight": {"generate": [(1000.0, 1.0), (1002.0, 3.0)]}}}
    return {"stack": stack, "engine": engine, "engine_detected": engine, "streams": streams,
            "startup_s": 5.0, "revision": "a-123", "phases": phases,
            "overall": results.overall(phases), "server": server}


def write_fake_report(out, orchestrated: bool = False):
    """The report over hand-made results for every compare run (the demo's extra
    `kserve-orchestrated` column when asked); returns `out`."""
    whole = whole_reference_phase(SCENARIO)
    per_stack = {"inprocess": fake_result("inprocess", 1000.0, True, "transformers",
                                          [*SCENARIO.phases, whole]),
                 "inprocess-vllm": fake_result("inprocess-vllm", 950.0, True, "vllm"),
                 "engine-alone": fake_result("engine-alone", 800.0, True, "vllm"),
                 "kserve": fake_result("kserve", 1100.0, False, "transformers")}
    if orchestrated:
        per_stack["kserve-orchestrated"] = fake_result("kserve-orchestrated", 1050.0, True,
                                                       "transformers")
    per_stack["rayserve"] = fake_result("rayserve", 900.0, True, "vllm")
    env = host.environment(Settings(), per_stack, "fallback scraper")
    report.write_report(out, SCENARIO, per_stack, env, {})
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_fake_report(tmp_path_factory.mktemp("report"))


def test_summary_holds_headline_figures_per_stack(written):
    summary = json.loads((written / "summary.json").read_text())
    stacks = summary["stacks"]
    assert set(stacks) == {"inprocess", "inprocess-vllm", "engine-alone", "kserve", "rayserve"}
    assert stacks["kserve"]["e2e_p50_ms_low_load"] == pytest.approx(1120.0)
    # KServe answers whole: set against the reference's whole-answer phase (same numbers here)
    assert stacks["kserve"]["overhead_e2e_p50_ms_low_load"] == pytest.approx(100.0)
    assert stacks["kserve"]["overhead_reference_phase"] == "c1-whole"
    assert stacks["kserve"]["overhead_reference"] == "inprocess"
    # every overhead is against the reference on the stack's own engine (issue 13)
    assert stacks["rayserve"]["overhead_e2e_p50_ms_low_load"] == pytest.approx(-50.0)
    assert stacks["rayserve"]["overhead_reference"] == "inprocess-vllm"
    assert stacks["rayserve"]["overhead_reference_engine"] == "vllm"
    assert stacks["rayserve"]["overhead_reference_phase"] == "c1"
    # ... and a ratio to the engine alone: e2e p50 (900+20) / (800+20), same TTFT
    assert stacks["rayserve"]["engine_alone_e2e_p50_ratio_low_load"] == pytest.approx(920 / 820)
    assert stacks["rayserve"]["engine_alone_ttft_p50_ratio_low_load"] == pytest.approx(1.0)
    assert stacks["kserve"]["ttft_p50_ms_low_load"] is None  # whole answers: no client TTFT
    assert stacks["rayserve"]["ttft_p50_ms_low_load"] == 300.0
    assert stacks["rayserve"]["rejected"] == 3
    assert stacks["inprocess"]["hop_total_mean_ms"] == pytest.approx(80.0)  # whole run, Prom.
    # per answer at low load: hops 12..16 ms, so mean and p50 14 ms, n 5 (the failed one has none)
    assert stacks["rayserve"]["hop_mean_ms_low_load"] == pytest.approx(14.0)
    assert stacks["rayserve"]["hop_p50_ms_low_load"] == pytest.approx(14.0)
    assert stacks["rayserve"]["hop_n_low_load"] == 5
    assert summary["environment"]["engines"]["rayserve"]["asked"] == "vllm"


def test_markdown_states_the_differences_and_tables(written):
    md = (written / "report.md").read_text()
    assert "does not stream" in md
    assert ("Engines differ (inprocess: transformers, inprocess-vllm: vllm, kserve: transformers, "
            "rayserve: vllm)") in md
    assert "rayserve's overhead is against `inprocess-vllm` (vllm)" in md
    assert "n too small (n=5)" in md  # p95 of 5 requests is not shown
    assert "| kserve | transformers | no (whole answer) | 15 / 3 |" in md
    assert "| 14.0 ms, 14.0 [" in md and "(n=5) |" in md  # the headline's hop total per answer
    assert "| stream batching | the stacks join streamed deltas for 50 ms" in md
    assert "rejected 503: queue full" in md
    assert "0.40 → " in md  # requested vs achieved rate of the Poisson phase
    assert "| inprocess | c1-whole | 1 users, answers whole |" in md
    for stage in STAGES:
        assert stage in md


def test_html_embeds_the_plots_and_the_same_tables(written):
    page = (written / "index.html").read_text()
    plots = sorted(p.name for p in (written / "plots").glob("*.png"))
    assert plots == ["latency_throughput_vs_concurrency.png", "open_loop.png",
                     "queue_depth_over_time.png", "stage_and_hop_breakdown.png", "ttft_tpot.png"]
    for name in plots:
        assert f"plots/{name}" in page
        assert (written / "plots" / name).stat().st_size > 10_000
    assert "no (whole answer)" in page and "Environment" in page


def test_fmt_and_to_markdown():
    assert tables.fmt(None) == "n/a" and tables.fmt(1234.5, 1) == "1,234.5"
    assert tables.to_markdown((["a"], [])) == "_none_\n"
    assert tables.to_markdown((["a", "b"], [[1, "x|y"]])).splitlines()[2] == "| 1 | x\\|y |"

"""`compare --scenario smoke` end to end: all three stacks, real Prometheus, the report.

The smoke scenario trimmed for CI (`TRIMMED`): the same phases, each a third shorter, and at
most 4 warm-up requests a stack: this checks what the comparison makes of its numbers, not how
steady they are, and on the slowest CI box the full scenario took 18 min of a 90 min budget.

One run serves two checks: the report (summary.json, report.md, index.html hold numbers for
kserve, rayserve and inprocess) and the Grafana dashboard (every panel query, run against the
run's own Prometheus before it stops, returns data for both stacks). About 9 minutes on an
AVX-512 box; how long it took is printed and kept in the run's directory (`test_duration.json`),
not asserted: on a shared machine a duration measures the neighbours as much as the code.
"""

from __future__ import annotations

import json
import math
import re
import time

import httpx
import pytest
from rich.console import Console

from loadtests.harness import compare
from loadtests.prometheus import MONITORING_DIR, parse_matrix
from loadtests.scenarios import SMOKE
from shared_pipeline.config import Settings

# The module fixture runs the whole comparison (five servers, 9 min or more on 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
STACKS = ("inprocess", "kserve", "rayserve")
TRIMMED = SMOKE.model_copy(update={
    "warmup_max_requests": 4,
    "phases": [p.model_copy(update={"duration_s": round(p.duration_s * 2 / 3)})
               for p in SMOKE.phases]})


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((MONITORING_DIR / "grafana-dashboard.json").read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def stacks_with_data(prometheus_url: str, expr: str, start: float, end: float) -> set[str]:
    """Grafana's substitutions (all stacks, a 30 s rate window), then a range query."""
    promql = expr.replace("$stack", ".*").replace("$__rate_interval", "30s")
    body = httpx.get(f"{prometheus_url}/api/v1/query_range", timeout=30, params={
        "query": promql, "start": start, "end": end, "step": 5}).json()
    return {s.labels.get("stack", "") for s in parse_matrix(body)
            if any(not math.isnan(v) for _, v in s.points)}


@pytest.fixture(scope="module")
def run(settings: Settings, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("compare-smoke")
    dashboard: dict[str, set[str]] = {}

    def check_dashboard(store, context) -> None:
        if store.prometheus is None:
            return
        for title, expr in dashboard_queries():
            dashboard[f"{title}: {expr}"] = stacks_with_data(
                store.prometheus.url, expr, context["started"], context["ended"])

    started = time.perf_counter()
    path = compare(settings, TRIMMED, False, out, Console(width=120),
                   before_stop=check_dashboard)
    seconds = time.perf_counter() - started
    (path / "test_duration.json").write_text(json.dumps({"compare_smoke_s": round(seconds, 1)}))
    print(f"compare --scenario smoke took {seconds:.0f} s (report in {path})")
    return {"path": path, "seconds": seconds, "dashboard": dashboard}


def test_summary_holds_numbers_for_every_stack(run):
    summary = json.loads((run["path"] / "summary.json").read_text())
    assert summary["errors"] == {}
    for stack in STACKS:
        head = summary["stacks"][stack]
        assert head["ok"] > 0 and head["error_rate"] == 0
        assert head["peak_throughput_rps"] > 0 and head["peak_output_tokens_per_s"] > 0
        assert head["e2e_p50_ms_low_load"] > 0 and head["e2e_p95_ms_high_load"] > 0
    for stack in ("inprocess", "rayserve"):  # streamed: client TTFT and TPOT exist
        assert 0 < summary["stacks"][stack]["ttft_p50_ms_low_load"] < summary["stacks"][
            stack]["e2e_p50_ms_low_load"]
        assert summary["stacks"][stack]["tpot_p50_ms_low_load"] > 0
    assert summary["stacks"]["kserve"]["ttft_p50_ms_low_load"] is None  # whole answers
    assert summary["stacks"]["kserve"]["hop_total_mean_ms"] > 0
    assert summary["stacks"]["kserve"]["engine"] == "transformers"
    assert summary["stacks"]["rayserve"]["engine_detected"] == "vllm"


def test_report_md_and_html_hold_the_stacks_and_their_numbers(run):
    md = (run["path"] / "report.md").read_text()
    page = (run["path"] / "index.html").read_text()
    headline = md.split("## Headline", 1)[1].split("\n## ", 1)[0]
    for stack in STACKS:
        # local KServe rows carry the emulation mark (graph runner, canary split): "kserve †"
        row = next(line for line in headline.splitlines()
                   if re.match(rf"\| {stack}( †)? \| ", line))
        assert re.search(r"\d+ ms", row), row
        assert re.search(rf"<td>{stack}( †)?</td>", page)
    assert "| kserve † |" in headline
    assert "does not stream" in md and "Engines differ" in md
    assert all((run["path"] / p).exists() for p in re.findall(r"src='(plots/[^']+)'", page))


def test_raw_numbers_are_saved(run):
    raw = run["path"] / "raw"
    for stack in STACKS:
        assert (raw / stack / "records.jsonl").stat().st_size > 0
        assert (raw / stack / "result.json").exists()
        assert list((raw / stack).glob("locust_*_stats.csv"))
    assert (raw / "promql.json").exists() or "fallback" in (run["path"] / "report.md").read_text()


def test_every_dashboard_query_returns_data_for_both_stacks(run):
    if not run["dashboard"]:
        pytest.skip("prometheus is not installed; the run used the fallback scraper")
    missing = {query: sorted({"kserve", "rayserve"} - stacks)
               for query, stacks in run["dashboard"].items()
               if not {"kserve", "rayserve"} <= stacks}
    assert not missing, json.dumps(missing, indent=1)

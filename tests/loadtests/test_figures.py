"""Experiment figures from hand-made records whose right answers are known, and the report
section and plot drawn from a result directory written the way the runner writes it."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests import figures
from loadtests.experiment_report import add_to_report, plot_timeline

A, B = "a-11111111", "a-11111111+b-22222222"
SLO = {"window_s": 10.0, "min_requests": 3, "max_error_rate": 0.05, "latency_factor": 2.0}


def rec(sent: float, e2e_ms: float = 1000, ok: bool = True, revision: str | None = A,
        **extra) -> dict:
    return {"sent": sent, "e2e_ms": e2e_ms, "ok": ok, "revision": revision if ok else None,
            "error": None if ok else extra.pop("error", "500 postprocess failed"),
            "rejected": False, **extra}


def rollback_records() -> list[dict]:
    records = [rec(t) for t in range(0, 20)]  # A, 1 s each: completes at t + 1
    records += [rec(20.0, revision=B), rec(21.0, revision=B), rec(22.0, ok=False),
                rec(23.0, ok=False), rec(24.0, revision=B), rec(25.0, ok=False)]
    records += [rec(29.5, revision=B, e2e_ms=1000)]  # sent before the rollback, done after
    records += [rec(t) for t in range(31, 45)]
    return records


ACTIONS = {"rollout": {"started": 15.0, "finished": 19.5},
           "rollback": {"started": 30.0, "finished": 30.1}}


def test_rollback_figures_follow_the_records() -> None:
    timeline = [{"t": 10.0, "replicas": {"x": 6}}, {"t": 20.0, "replicas": {"x": 6, "y": 1}},
                {"t": 40.0, "replicas": {"x": 6, "y": 1}}]
    f = figures.rollback_figures(rollback_records(), ACTIONS, timeline, A, SLO)
    assert (f["requests"], f["failed"], f["responses_on_b"]) == (41, 3, 4)  # 20 + 7 + 14
    assert [label for label, _ in f["revision_runs"]] == [A, B, "failed", B, "failed", B, A]
    # B's first answer completes at 21.0, 6 s after the rollout started at 15.0
    assert f["first_b_response_s"] == 6.0
    # The window's first failure completes at 23.0: 1 of 3 responses in (13, 23] ... fails
    assert f["time_to_detect_s"] == 23.0 - 19.5
    assert f["detected_by"].startswith("error rate")
    # The last non-A response completes at 30.5, 0.5 s after the rollback started
    assert f["time_to_restore_s"] == 0.5
    assert f["responses_on_a_after_restore"] == 14
    assert f["failed_in_window"] == 3
    assert (f["replicas_at_start"], f["extra_replicas"]) == (6, 1)


def test_on_a_slow_box_the_window_stretches_to_min_requests() -> None:
    # one answer every 6 s: a 10 s window never holds 3, so a fixed one never judges B
    records = [rec(t, e2e_ms=6000) for t in range(0, 18, 6)]  # A, done at 6, 12, 18
    records += [rec(18.0, e2e_ms=6000, ok=False), rec(24.0, e2e_ms=6000, revision=B)]
    f = figures.rollback_figures(records, ACTIONS, [], A, SLO)
    # at 24.0 (the failure's completion) the last 3 are 12, 18 and 24: 1 of 3 failed
    assert f["time_to_detect_s"] == 24.0 - 19.5
    assert f["detected_by"] == "error rate 33% over 3 responses"
    short = {**SLO, "min_requests": 6}  # fewer responses than that in all: never judged
    assert figures.rollback_figures(records, ACTIONS, [], A, short)["time_to_detect_s"] is None


def test_a_benign_revision_trips_no_slo() -> None:
    records = [rec(t) for t in range(0, 20)] + [rec(t, revision=B) for t in range(20, 30)] + \
        [rec(t) for t in range(30, 40)]
    f = figures.rollback_figures(records, ACTIONS, [], A, SLO)
    assert f["time_to_detect_s"] is None and f["detected_by"] is None
    assert f["failed"] == 0 and f["responses_on_b"] == 10
    assert f["extra_replicas"] is None  # no timeline, no replica figure (not a made-up 0)


def test_a_slow_revision_is_detected_by_latency() -> None:
    records = [rec(t, e2e_ms=1000) for t in range(0, 20)] + \
        [rec(t, e2e_ms=4000, revision=B) for t in range(20, 30)]
    records += [rec(t) for t in range(34, 40)]
    f = figures.rollback_figures(records, ACTIONS, [], A, SLO)
    assert f["detected_by"].startswith("p95")
    assert f["baseline_p95_ms"] == 1000
    assert f["p99_in_window_ms"] > 3900


def test_kill_figures() -> None:
    records = [rec(t) for t in range(0, 10)] + \
        [rec(10.0 + i * 0.1, e2e_ms=5, ok=False, error="500 connection refused")
         for i in range(20)] + [rec(t) for t in range(14, 20)]
    timeline = [{"t": 9.0, "replicas": {"gen": 1, "post": 1}},
                {"t": 10.5, "replicas": {"gen": 0, "post": 1}},
                {"t": 13.0, "replicas": {"gen": 1, "post": 1}}]
    f = figures.kill_figures(records, {"kill": {"started": 10.0, "finished": 10.0}}, timeline,
                             "gen")
    assert f["failed_after_kill"] == 20 and f["failed"] == 20
    assert round(f["time_to_recover_s"], 3) == 1.905  # the last failure completed at 11.905
    assert f["replica_seen_down_s"] == 0.5 and f["replacement_ready_s"] == 3.0
    assert f["served_after_recovery"] == 6


def test_overload_figures() -> None:
    load = [rec(i * 0.25, e2e_ms=3000, phase="overload") for i in range(10)]
    load += [rec(3 + i * 0.25, e2e_ms=20, ok=False, phase="overload", rejected=True,
                 retry_after="2", retry_after_from="header") for i in range(6)]
    load += [rec(5, e2e_ms=20, ok=False, phase="overload", rejected=True)]  # no hint
    f = figures.overload_figures(load, [rec(0, phase="calibrate")] * 4, "overload", 1.0, 3.0,
                                 [{"ok": True}, {"ok": True}])
    assert (f["admitted"], f["rejected"], f["rejected_with_retry_after"]) == (10, 7, 6)
    assert f["rejection_p50_ms"] == 20 and f["admitted_p50_ms"] == 3000
    assert f["retry_after_from"] == {"header": 6, "None": 1}
    assert f["served_after"] == 2 and f["other_failures"] == 0


def test_report_section_and_plot_come_from_the_raw_files(tmp_path: Path) -> None:
    run = tmp_path / "experiments" / "rollback-kserve"
    run.mkdir(parents=True)
    records = rollback_records()
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    timeline = [{"t": float(t), "replicas": {"x": 6 + (20 <= t < 30)},
                 "queue_depth": {"small": 1.0}, "inflight": {}} for t in range(0, 45, 2)]
    (run / "timeline.jsonl").write_text("".join(json.dumps(s) + "\n" for s in timeline))
    result = {"experiment": "rollback", "stack": "kserve", "started": 0.0, "revision_a": A,
              "change": {"change": "bad", "mode": "canary", "revision_change": {}},
              "actions": ACTIONS, "raw": {"records": "records.jsonl"},
              "figures": figures.rollback_figures(records, ACTIONS, timeline, A, SLO)}
    (run / "result.json").write_text(json.dumps(result))
    png = plot_timeline(result, run)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"

    (tmp_path / "report.md").write_text("# r\n\n## Environment\n")
    (tmp_path / "index.html").write_text("<h1>r</h1><h2>Environment</h2>")
    add_to_report(tmp_path)
    add_to_report(tmp_path)  # idempotent: the section is replaced, not doubled
    md = (tmp_path / "report.md").read_text()
    assert md.count("### rollback") == 1
    assert md.index("### rollback") < md.index("## Environment")
    assert "experiments/rollback-kserve/timeline.png" in md
    assert "| failed requests (all / in window) | 3 / 3 |" in md
    assert "experiments/rollback-kserve/timeline.png" in (tmp_path / "index.html").read_text()


def test_longest_stall_shows_an_outage_that_failed_nothing() -> None:
    """Requests that wait through a full restart complete late on A: the restore time stays
    short, the stall shows the outage."""
    records = [rec(t) for t in range(0, 20)] + [rec(31.0, e2e_ms=60_000)] + \
        [rec(t) for t in range(92, 100)]
    f = figures.rollback_figures(records, ACTIONS, [], A, SLO)
    assert f["failed"] == 0 and f["time_to_restore_s"] == 0.0
    assert f["longest_stall_s"] == 91.0 - 20.0  # completions at 20.0 and then 91.0

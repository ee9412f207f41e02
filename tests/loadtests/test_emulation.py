"""The report marks figures from emulated parts: a local KServe row (the Python graph runner in
place of KServe's router; in experiments also the local canary split and supervisor) carries a
mark in every table and a footnote naming the parts; a Ray Serve row and a run against a
deployment (`--url`) carry none. Rendered by the real report writer on synthetic results."""

from __future__ import annotations

import json
import re
from pathlib import Path

from loadtests import host, report
from loadtests.emulation import CANARY, GRAPH, MARK, SUPERVISOR, emulated_parts
from loadtests.experiment_report import experiments_section
from shared_pipeline.config import Settings
from tests.loadtests.test_report import SCENARIO, fake_result

RECORDED = Path(__file__).parent / "fixtures/decision/report/experiments/rollback-kserve"


def test_only_local_kserve_is_emulated() -> None:
    assert emulated_parts("kserve", remote=False) == [GRAPH]
    assert emulated_parts("kserve", remote=False, experiment="rollback") == [GRAPH, CANARY]
    assert emulated_parts("kserve", remote=False, experiment="kill-replica") == [
        GRAPH, SUPERVISOR]
    assert emulated_parts("kserve-orchestrated", remote=False, experiment="rollback") == [
        CANARY]
    assert emulated_parts("kserve", remote=True, experiment="rollback") == []
    assert emulated_parts("rayserve", remote=False, experiment="rollback") == []
    assert emulated_parts("inprocess", remote=False) == []


def test_report_marks_every_kserve_row_and_footnotes_the_parts(tmp_path) -> None:
    kserve = {**fake_result("kserve", 1100.0, False, "transformers"),
              "emulated": emulated_parts("kserve", remote=False)}
    ray = {**fake_result("rayserve", 900.0, True, "vllm"), "emulated": []}
    per_stack = {"kserve": kserve, "rayserve": ray}
    env = host.environment(Settings(), per_stack, "fallback scraper")
    report.write_report(tmp_path, SCENARIO, per_stack, env, {})
    md = (tmp_path / "report.md").read_text().split("## Environment")[0]  # not package rows
    rows = [line for line in md.splitlines() if line.startswith("| kserve")]
    assert rows and all(line.startswith(f"| kserve {MARK} |") for line in rows)
    assert not re.search(rf"\| rayserve {MARK}", md)
    assert f"{MARK} kserve: measured locally with emulated parts: {GRAPH}" in md
    assert f"kserve {MARK}" in (tmp_path / "index.html").read_text()
    assert any(GRAPH in note for note in json.loads(
        (tmp_path / "summary.json").read_text())["differences_by_design"])


def test_experiment_section_marks_an_emulated_rollback(tmp_path) -> None:
    run = tmp_path / "rollback-kserve"
    run.mkdir()
    result = {**json.loads((RECORDED / "result.json").read_text()),
              "emulated": emulated_parts("kserve", remote=False, experiment="rollback")}
    (run / "result.json").write_text(json.dumps(result))
    (run / "timeline.png").write_bytes(b"")
    md, html = experiments_section(tmp_path, tmp_path)
    assert f"kserve {MARK} (canary)" in md and CANARY in md and CANARY in html

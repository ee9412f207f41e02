"""The report's "vLLM's benchmark client beside locust" section, on hand-made results: vLLM's
figures (read from a JSON shaped like `vllm bench serve --save-result` writes) next to locust's
phase at the same concurrency, the stacks the step skipped or lost, and the scenario option
that turns the step on (demo) or off (smoke). The `vllm bench serve` run itself is covered by
tests/loadtests/test_vllm_bench_command.py and the stacks' slow tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests import host, report
from loadtests.scenarios import DEMO, SMOKE
from loadtests.stacks import StackHandle
from loadtests.vllm_bench import beside_locust, compare_plan, load_result
from loadtests.vllm_bench_table import TITLE, locust_phase, vllm_bench_table
from shared_pipeline.config import Settings
from tests.loadtests.test_report import SCENARIO, fake_result

NO_FLOOR = {"found": False, "looked_for": "nowhere (this test)"}


def saved_vllm_json(path: Path) -> Path:
    """The fields `load_result` reads, as `vllm bench serve` names them in its result file."""
    path.write_text(json.dumps({"completed": 15, "failed": 1, "median_ttft_ms": 412.5,
                                "median_tpot_ms": 38.25, "request_throughput": 1.234,
                                "output_throughput": 19.75, "errors": ["", "", "boom"]}))
    return path


def entry(**extra) -> dict:
    plan = compare_plan(SMOKE)
    return {"backend": "openai-chat", "num_prompts": plan.num_prompts,
            "max_concurrency": plan.max_concurrency, "output_len": plan.output_len,
            "file": "raw/x/vllm_bench.json", **extra}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    ray = fake_result("rayserve", 900.0, True, "vllm")
    ray["vllm_bench"] = entry(**load_result(saved_vllm_json(out / "vllm_bench.json")))
    ref = fake_result("inprocess-vllm", 950.0, True, "vllm")
    ref["vllm_bench"] = entry(error="RuntimeError: vllm bench serve (openai-chat) exited 1")
    kserve = fake_result("kserve", 1100.0, False, "transformers")
    kserve["vllm_bench"] = entry(skipped="does not stream, and vllm bench serve only streams")
    per_stack = {"inprocess-vllm": ref, "kserve": kserve, "rayserve": ray}
    env = host.environment(Settings(), per_stack, "fallback scraper")
    report.write_report(out, SCENARIO, per_stack, env, {}, floor=NO_FLOOR)
    return out


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_vllms_figures_sit_next_to_locusts_phase_at_the_same_concurrency(written) -> None:
    text = section((written / "report.md").read_text(), TITLE)
    print(text)
    lines = [line for line in text.splitlines() if line.startswith("| rayserve")]
    assert lines == [
        "| rayserve | vllm bench serve (openai-chat) | 16 prompts, max concurrency 4 | 16 | 1 "
        "| 412 | 38.2 | 19.8 | 1.23 |",
        # fake_result: 5 ok + 1 rejected per phase, TTFT 300 ms, tpot (920-300)/15 at p50
        "| rayserve | locust | phase c4: 4 users, 15 s | 6 | 1 | 300 | 41.3 | 5.3 | 0.33 |"]


def test_a_lost_run_and_a_skipped_stack_are_said(written) -> None:
    text = section((written / "report.md").read_text(), TITLE)
    assert ("| inprocess-vllm | vllm bench serve | 16 prompts, max concurrency 4 | did not finish"
            in text)
    assert "inprocess-vllm: vllm bench serve did not finish: RuntimeError" in text
    assert "kserve: not run (does not stream, and vllm bench serve only streams)." in text
    assert "| kserve |" not in text  # no rows for a stack that was not run
    assert "`raw/<stack>/vllm_bench.json`" in text and "at most 4 at once" in text


def test_html_and_summary_carry_the_same(written) -> None:
    page = (written / "index.html").read_text()
    assert "vLLM&#39;s benchmark client beside locust" in page
    assert "vllm bench serve (openai-chat)" in page
    summary = json.loads((written / "summary.json").read_text())
    assert summary["vllm_bench"]["rayserve"]["ttft_p50_ms"] == 412.5
    assert summary["vllm_bench"]["kserve"]["skipped"]


def test_no_section_when_the_scenario_did_not_ask(tmp_path) -> None:
    per_stack = {"rayserve": fake_result("rayserve", 900.0, True, "vllm")}
    env = host.environment(Settings(), per_stack, "fallback scraper")
    report.write_report(tmp_path, SCENARIO, per_stack, env, {}, floor=NO_FLOOR)
    assert TITLE not in (tmp_path / "report.md").read_text()


def test_locusts_row_is_the_closest_concurrency_phase() -> None:
    result = fake_result("rayserve", 900.0, True, "vllm")
    assert locust_phase(result, 4)["phase"] == "c4"
    assert locust_phase(result, 2)["phase"] == "c1"  # c1 and c4: the nearer one
    assert locust_phase(result, 16)["phase"] == "c4"
    assert locust_phase({"phases": []}, 4) is None


def test_demo_runs_the_step_and_smoke_does_not() -> None:
    assert DEMO.vllm_bench and not SMOKE.vllm_bench
    plan = compare_plan(DEMO)
    assert (plan.num_prompts, plan.max_concurrency, plan.output_len) == (16, 4, DEMO.max_tokens)


def test_the_step_runs_only_against_a_streaming_stack(tmp_path) -> None:
    """The paths that start no client: off, a stack that does not stream, the engine alone."""
    def handle(streams: bool) -> StackHandle:
        return StackHandle("x", "http://127.0.0.1:9", [], streams=streams, engine="vllm",
                           settle_s=0.0)

    settings = Settings()
    assert beside_locust("rayserve", handle(True), SMOKE, settings, tmp_path, None) is None
    kserve = beside_locust("kserve", handle(False), DEMO, settings, tmp_path, None)
    assert "does not stream" in kserve["skipped"]
    engine = beside_locust("engine-alone", handle(True), DEMO, settings, tmp_path, None)
    assert "vLLM's own server" in engine["skipped"]
    assert kserve["file"] == "raw/kserve/vllm_bench.json" and not list(tmp_path.iterdir())


def test_table_has_no_rows_without_runs() -> None:
    assert vllm_bench_table({"rayserve": fake_result("rayserve", 900.0, True, "vllm")})[1] == []

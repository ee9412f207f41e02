"""Which stacks a comparison runs: the scenario's `stacks` (demo: both KServe topologies and
Ray; smoke: kserve + rayserve), `--stacks a,b` overriding it, and the scrape job that keeps the
orchestrated topology's series apart from the graph's (both carry stack="kserve")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests.references import compare_stacks, metrics_label, scrape_job
from loadtests.scenario_file import ScenarioFileError, load_scenario_file
from loadtests.scenarios import DEFAULT_STACKS, Scenario, get_scenario, with_stacks
from shared_pipeline.config import Settings
from twinserve.cli import app

PHASE = "phases:\n- {kind: concurrency, name: c1, users: 1, duration_s: 1}\n"


def test_demo_compares_both_kserve_topologies_and_smoke_keeps_two() -> None:
    assert get_scenario("demo").stacks == ["kserve", "kserve-orchestrated", "rayserve"]
    assert get_scenario("smoke").stacks == ["kserve", "rayserve"]
    settings = Settings()
    assert compare_stacks(settings, False, tuple(get_scenario("demo").stacks)) == (
        "inprocess", "inprocess-vllm", "engine-alone", "kserve", "kserve-orchestrated",
        "rayserve")
    # the orchestrated topology runs KServe's engine: no reference of its own
    assert compare_stacks(settings, False, ("kserve-orchestrated",)) == (
        "inprocess", "engine-alone", "kserve-orchestrated")


def test_a_yaml_scenario_without_stacks_compares_the_default(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndescription: d\n" + PHASE)
    assert load_scenario_file(path).stacks == list(DEFAULT_STACKS) == ["kserve", "rayserve"]
    path.write_text("name: mine\ndescription: d\nstacks: [kserve-orchestrated]\n" + PHASE)
    assert load_scenario_file(path).stacks == ["kserve-orchestrated"]


@pytest.mark.parametrize(("stacks", "named"), [
    ("[kserve, triton]", "unknown stack triton; known: kserve, kserve-orchestrated, rayserve"),
    ("[rayserve, rayserve]", "a stack is named twice"),
    ("[inprocess]", "unknown stack inprocess"),  # references are added by compare itself
    ("[]", "stacks: List should have at least 1 item"),
])
def test_a_bad_stacks_field_names_the_field(tmp_path: Path, stacks: str, named: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: x\ndescription: y\nstacks: {stacks}\n" + PHASE)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_file(path)
    assert "stacks" in str(caught.value) and named in str(caught.value)


def test_stacks_option_replaces_the_scenarios_and_keeps_the_rest() -> None:
    smoke = get_scenario("smoke")
    chosen = with_stacks(smoke, "kserve, kserve-orchestrated,rayserve")
    assert chosen.stacks == ["kserve", "kserve-orchestrated", "rayserve"]
    assert chosen.model_dump(exclude={"stacks"}) == smoke.model_dump(exclude={"stacks"})
    assert smoke.stacks == ["kserve", "rayserve"]  # the shipped scenario is not changed
    assert isinstance(chosen, Scenario)
    for value, named in (("kserve,vllm", "unknown stack vllm"), ("", "at least 1 item"),
                         ("kserve,kserve", "named twice")):
        with pytest.raises(ValueError, match=named):
            with_stacks(smoke, value)


def test_compare_refuses_a_bad_stacks_option_before_starting_anything() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["compare", "--scenario", "smoke", "--stacks", "kserve,triton"])
    assert result.exit_code == 2
    assert "--stacks kserve,triton: unknown stack triton" in " ".join(result.output.split())
    result = runner.invoke(app, ["compare", "--stacks", "kserve",
                                 "--url", "kserve=http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--stacks" in result.output


def test_orchestrated_series_keep_kserves_label_and_get_their_own_job() -> None:
    assert metrics_label("kserve-orchestrated") == metrics_label("kserve") == "kserve"
    assert scrape_job("kserve-orchestrated") == "kserve-orchestrated"
    assert [scrape_job(s) for s in ("kserve", "rayserve", "inprocess", "inprocess-vllm")] == [
        "kserve", "rayserve", "inprocess", "inprocess"]

"""Scenarios from YAML (`--scenario path.yaml`): the shipped ones exported to
examples/scenarios/ load back to the very objects in loadtests/scenarios.py, and a bad file is
refused naming the file and the field, before any stack starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests.scenario_file import (
    ScenarioFileError,
    load_scenario_file,
    resolve_scenario,
    scenario_yaml,
)
from loadtests.scenarios import SCENARIOS
from twinserve.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_shipped_examples_load_to_the_builtin_scenarios(name: str) -> None:
    path = EXAMPLES / f"{name}.yaml"
    assert load_scenario_file(path) == SCENARIOS[name]
    assert resolve_scenario(str(path)) == SCENARIOS[name]
    assert resolve_scenario(name) is SCENARIOS[name]  # a name is still a name


def test_an_exported_scenario_reads_back_equal(tmp_path: Path) -> None:
    for scenario in SCENARIOS.values():
        path = tmp_path / f"{scenario.name}.yml"
        path.write_text(scenario_yaml(scenario))
        assert load_scenario_file(path) == scenario


@pytest.mark.parametrize(("text", "named"), [
    ("name: x\ndescription: y\nphases: []\n", "phases: List should have at least 1 item"),
    ("name: x\ndescription: y\nmax_tokens: 0\nphases:\n- {kind: concurrency, name: c1, "
     "users: 1, duration_s: 1}\n", "max_tokens: Input should be greater than 0"),
    ("name: x\ndescription: y\nphases:\n- {kind: concurrency, name: c1, users: -1, "
     "duration_s: 1}\n", "phases.0.concurrency.users"),
    ("name: x\ndescription: y\nphases:\n- {kind: burst, name: b, duration_s: 1}\n",
     "phases.0"),
    ("description: y\nphases:\n- {kind: concurrency, name: c1, users: 1, duration_s: 1}\n",
     "name: Field required"),
    ("- just\n- a list\n", "expected a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path, text: str,
                                                 named: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_file(path)
    assert str(path) in str(caught.value) and named in str(caught.value)


def test_a_missing_file_and_an_unknown_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="cannot read"):
        resolve_scenario(str(tmp_path / "nope.yaml"))
    with pytest.raises(KeyError, match="known: smoke, demo"):
        resolve_scenario("nope")


def test_the_cli_refuses_a_bad_scenario_file_before_starting_anything(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndescription: y\nphases: []\n")
    for args in (["bench", "--stack", "inprocess"], ["compare"]):
        result = CliRunner().invoke(app, [*args, "--scenario", str(path),
                                          "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert "phases" in result.output
        assert not (tmp_path / "out").exists()

"""The inventory: the issue's exact shape, and every refusal names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loadtests.decision.inventory import InventoryError, load_inventory, parse_inventory
from twinserve.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inventories"
REPORT = Path(__file__).with_name("fixtures") / "decision" / "report"
ISSUE_EXAMPLE = """
route: rag-answers
owner: app-team
graph_complexity: multi-step
rollback_unit: [prompt, graph]
autoscaling_owner: serving-layer
oncall: kubernetes
requirements:
  streaming: true
  load: c4
  ttft_p95_ms: 1500
  e2e_p95_ms: 6000
  time_to_restore_s: 30
  max_failed_during_rollback: 5
  max_overhead_ms: 100
"""


def base() -> dict:
    return yaml.safe_load(ISSUE_EXAMPLE)


def refused(data: dict) -> str:
    with pytest.raises(InventoryError) as exc:
        parse_inventory(data)
    return str(exc.value)


def test_the_issue_example_and_every_shipped_inventory_parse() -> None:
    inv = parse_inventory(base())
    assert inv.rollback_unit == ["prompt", "graph"]
    assert inv.requirements.present()["max_overhead_ms"] == 100
    shipped = sorted(EXAMPLES.glob("*.yaml"))
    assert len(shipped) >= 2
    for path in shipped:
        assert load_inventory(path).route


@pytest.mark.parametrize(("change", "field"), [
    ({"owner": "<platform-or-app-team>"}, "owner"),
    ({"route": "<route-name>"}, "route"),
    ({"rollback_unit": ["prompt", "<resource-runtime-model-graph>"]}, "rollback_unit[1]"),
    ({"requirements": {"load": "<phase>", "e2e_p95_ms": 10}}, "requirements.load"),
])
def test_a_placeholder_left_in_is_refused_naming_the_field(change: dict, field: str) -> None:
    message = refused({**base(), **change})
    assert "placeholder" in message
    assert field in message


@pytest.mark.parametrize(("change", "field"), [
    ({"owner": "sre-team"}, "owner"),
    ({"graph_complexity": "dag"}, "graph_complexity"),
    ({"rollback_unit": ["prompt", "weights"]}, "rollback_unit.1"),
    ({"autoscaling_owner": "keda"}, "autoscaling_owner"),
    ({"oncall": "nobody"}, "oncall"),
    ({"requirements": {"streaming": "sometimes"}}, "requirements.streaming"),
    ({"requirements": {"ttft_p95": 10}}, "requirements.ttft_p95"),
    ({"colour": "blue"}, "colour"),
])
def test_an_unknown_value_or_field_is_refused_naming_it(change: dict, field: str) -> None:
    assert f"{field}:" in refused({**base(), **change})


def test_a_missing_field_and_a_latency_limit_without_a_load_are_refused() -> None:
    data = base()
    del data["oncall"]
    assert "oncall: missing field" in refused(data)
    assert "load is required by e2e_p95_ms" in refused(
        {**base(), "requirements": {"e2e_p95_ms": 5000}})
    assert "rollback_unit" in refused({**base(), "rollback_unit": ["prompt", "prompt"]})
    assert "rollback_unit" in refused({**base(), "rollback_unit": []})


def test_cli_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE.replace("owner: app-team", "owner: <platform-or-app-team>"))
    result = CliRunner().invoke(app, ["decide", "--inventory", str(bad), "--report",
                                      str(REPORT), "--out", str(tmp_path / "d.md")])
    assert result.exit_code == 2
    assert "owner" in result.output and "placeholder" in result.output
    assert not (tmp_path / "d.md").exists()

"""`compare --experiment` runs the experiments on the stacks the comparison started (no second
start): the hook reaches only served stacks started here, runs inside the running block after
every measurement, and its failure keeps the stack's comparison result; KServe is started
supervised for it; the CLI writes the experiments where the report looks for them.

The fast tests need no server; the one slow test runs the in-process reference (the quickest
stack to start) through the harness with the hook allowed on it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from loadtests import engine_alone, experiment_stacks, harness, references
from loadtests.experiment_stacks import on_running
from loadtests.remote import RemoteTarget
from loadtests.scenarios import Scenario
from loadtests.shapes import ConcurrencyPhase
from loadtests.stacks import SERVED_STACKS, StackHandle
from shared_pipeline.config import Settings
from shared_pipeline.request_body import build_body
from twinserve.cli import app


def handle(name: str) -> StackHandle:
    return StackHandle(name, "http://127.0.0.1:9", [], streams=True, engine="transformers",
                       settle_s=0.0, startup_s=12.0)


def hook(handle: StackHandle) -> None:
    """Stands for the experiments in the tests that only check where it is passed."""


def test_the_hook_reaches_served_stacks_started_here_only() -> None:
    for stack in SERVED_STACKS:
        assert harness.after_load_for(stack, None, hook) is hook
    for stack in ("inprocess", "inprocess-vllm", engine_alone.NAME):
        assert harness.after_load_for(stack, None, hook) is None
    remote = RemoteTarget("kserve", "http://127.0.0.1:9")
    assert harness.after_load_for("kserve", remote, hook) is None
    assert harness.after_load_for("kserve", None, None) is None


def test_supervise_reaches_the_served_stacks_launch_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[tuple[str, bool]] = []

    @contextlib.contextmanager
    def fake_launch(name: str, settings: Settings, log_dir: Path, *, engine_parity: bool = False,
                    supervise: bool = False) -> Iterator[StackHandle]:
        launched.append((name, supervise))
        yield handle(name)

    monkeypatch.setattr(references, "launch", fake_launch)
    for stack in ("kserve", "kserve-orchestrated", "rayserve", "inprocess", "inprocess-vllm"):
        with references.running(stack, Settings(), tmp_path, False, supervise=True) as h:
            assert h.name == stack
    with references.running("kserve", Settings(), tmp_path, False):
        pass
    assert launched == [("kserve", True), ("kserve-orchestrated", True), ("rayserve", True),
                        ("inprocess", False), ("inprocess", False),  # inprocess-vllm's launch
                        ("kserve", False)]


class FakeControl:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_on_running_closes_the_control_even_when_the_experiment_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    controls: list[FakeControl] = []
    monkeypatch.setattr(experiment_stacks, "control_for",
                        lambda h, s: controls.append(FakeControl()) or controls[-1])
    running = handle("rayserve")
    with on_running(running, Settings()) as (h, control):
        assert h is running and control is controls[0] and not control.closed
    assert controls[0].closed
    with pytest.raises(RuntimeError, match="rollout broke"), \
            on_running(running, Settings()) as (h, control):
        raise RuntimeError("rollout broke")
    assert controls[1].closed


def test_experiment_stack_starts_supervised_then_closes_the_control_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    control = FakeControl()

    @contextlib.contextmanager
    def fake_launch(name: str, settings: Settings, log_dir: Path, *,
                    supervise: bool = False) -> Iterator[StackHandle]:
        events.append(f"start {name} supervise={supervise}")
        yield handle(name)
        events.append(f"stop {name} control closed={control.closed}")

    monkeypatch.setattr(experiment_stacks, "launch", fake_launch)
    monkeypatch.setattr(experiment_stacks, "control_for", lambda h, s: control)
    with experiment_stacks.experiment_stack("kserve", Settings(), tmp_path) as (h, c):
        assert h.name == "kserve" and c is control
    assert events == ["start kserve supervise=True", "stop kserve control closed=True"]


def test_compare_experiment_passes_the_hook_and_writes_where_the_report_looks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, Any] = {}

    def fake_compare(settings, scenario, engine_parity, out, console, **kwargs) -> Path:
        calls["compare"] = kwargs
        return out

    def fake_experiment(settings, kinds, stack, scenario, out, console, repeat=1, running=None):
        with running as (h, control):
            calls["experiment"] = (kinds, stack, scenario, out, repeat, h.name, control)
        return []

    monkeypatch.setattr(harness, "compare", fake_compare)
    monkeypatch.setattr("loadtests.experiment_report.add_to_report",
                        lambda report: calls.setdefault("report", report))
    monkeypatch.setattr("loadtests.experiments.experiment", fake_experiment)
    monkeypatch.setattr(experiment_stacks, "control_for", lambda h, s: FakeControl())
    done = CliRunner().invoke(app, ["compare", "--scenario", "smoke", "--experiment", "rollback",
                                    "--repeat", "2", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert calls["compare"]["supervise"] is True and calls["report"] == tmp_path
    calls["compare"]["after_load"](handle("kserve"))
    kinds, stack, plan, out, repeat, name, control = calls["experiment"]
    assert (kinds, stack, plan, out, repeat, name) == (
        ["rollback"], "kserve", "smoke", tmp_path / "experiments", 2, "kserve")
    assert control.closed  # on_running's control, closed when the experiments end

    calls.clear()
    done = CliRunner().invoke(app, ["compare", "--scenario", "smoke", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert calls["compare"]["supervise"] is False and calls["compare"]["after_load"] is None
    assert "report" not in calls


TINY = Scenario(name="tiny-reuse", description="one short phase, for the after-load hook",
                max_tokens=4, warmup_requests=1, warmup_max_requests=2, stop_timeout_s=10,
                scrape_interval_s=1, phases=[ConcurrencyPhase(name="c1", users=1, duration_s=3)])


@pytest.mark.slow
def test_the_hook_runs_on_the_running_stack_after_its_measurements_and_a_failure_is_kept(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the in-process reference, the quickest stack to start, stands in for a served stack
    monkeypatch.setattr(harness, "SERVED_STACKS", ("inprocess",))
    seen: list[tuple[str, int, float]] = []

    def failing_experiments(h: StackHandle) -> None:
        body = build_body("What does the yield statement do?", 4, None, stream=False)
        r = httpx.post(f"{h.url}/v1/chat/completions", json=body, timeout=120)
        seen.append((h.name, r.status_code, time.time()))
        raise RuntimeError("experiment broke")

    console = Console(record=True, width=200)
    started = time.perf_counter()
    path = harness._run(settings, ("inprocess",), TINY, tmp_path, console, False,
                        supervise=True, after_load=failing_experiments)
    print(f"harness run with the hook: {time.perf_counter() - started:.0f}s")
    assert [(name, status) for name, status, _ in seen] == [("inprocess", 200)]
    assert "inprocess: experiments failed: RuntimeError: experiment broke" in \
        console.export_text()
    result = json.loads((path / "raw" / "inprocess" / "result.json").read_text())
    assert result["overall"]["ok"] > 0 and result["overall"]["failed"] == 0
    assert seen[0][2] > max(w["finished"] for w in result["windows"])  # after every window
    assert json.loads((path / "summary.json").read_text())["errors"] == {}

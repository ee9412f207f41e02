"""The three experiments, briefly, on a real local KServe stack (supervised, as pods are), in
each topology: the graph (InferenceGraph runner in front) and the orchestrated entry.

Real model servers, the real entry, real locust load; sizes from the `smoke` plan. The module's
stack is started once per topology (the graph's stopped before the orchestrated one starts):
- rollback: revision B fails half the requests in the post-processor; it gets 100% of that
  InferenceService's traffic as a canary, then `canaryTrafficPercent: 0` rolls it back (the
  entry applies the split: the graph runner, or the orchestrator's stage client);
- kill-replica: the post-processor's server is SIGKILLed and restarted by the supervisor
  (through the orchestrator only: the graph has the same supervisor and servers);
- overload: 3x the calibrated capacity on test-sized generator queues (a burst that cannot
  fit, see `experiment_checks.sized_for_overload`); refusals are 503s with the retry hint: in
  the body through the graph (KServe's router drops the `Retry-After` header), in the header
  through the orchestrator (which relays it); the test checks which one did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from loadtests.experiments import PLANS, experiment_stack, run_on
from loadtests.results import load_records
from loadtests.stacks import StackHandle
from shared_pipeline.config import Settings
from shared_pipeline.control import StackControl
from tests.experiment_checks import check_kill, check_overload, check_rollback, sized_for_overload

pytestmark = pytest.mark.slow
PLAN = PLANS["smoke"]


@pytest.fixture(scope="module", params=["kserve", "kserve-orchestrated"])
def stack(request: pytest.FixtureRequest, settings: Settings,
          tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[StackHandle, StackControl]]:
    sized = sized_for_overload(settings, PLAN)
    with experiment_stack(request.param, sized,
                          tmp_path_factory.mktemp(f"{request.param}-logs")) as running:
        yield running


def test_rollback_flips_to_b_and_back(stack, tmp_path: Path) -> None:
    handle, control = stack
    result = run_on("rollback", handle, control, PLAN, tmp_path, Console())
    check_rollback(result, tmp_path)
    f = result["figures"]
    assert result["change"]["mode"] == "canary"
    assert f["failed"] > 0 and f["time_to_detect_s"] is not None  # half failing (smoke) is detected
    assert f["extra_replicas"] == 1  # the post-processor's new revision ran beside the old one
    # restored: check_rollback asserts every answer after it is on A; how fast is printed
    print(f"time to restore: {f['time_to_restore_s']:.1f} s")
    assert f["time_to_restore_s"] is not None


def test_killed_server_is_restarted(stack, tmp_path: Path) -> None:
    handle, control = stack
    if handle.name == "kserve":  # the same supervisor restarts the same server behind either
        pytest.skip("run through the orchestrator only: the supervisor and the server it "
                    "restarts are the graph's too, and a stack start is minutes on CI")
    result = run_on("kill-replica", handle, control, PLAN, tmp_path, Console())
    check_kill(result, tmp_path, handle.url)
    assert result["figures"]["target"] == "postprocessor"
    events = handle.native.local.events
    assert [e["event"] for e in events if e["server"] == "postprocessor"][-2:] == [
        "exited", "restarted"]


def test_overload_is_refused_fast(stack, tmp_path: Path) -> None:
    handle, control = stack
    result = run_on("overload", handle, control, PLAN, tmp_path, Console())
    check_overload(result, tmp_path)
    refused = [r for r in load_records(tmp_path / "records.jsonl") if r["rejected"]]
    # Through the InferenceGraph the header is lost and the error body carries the hint; the
    # orchestrator relays the generator's `Retry-After` header.
    expected = "header" if handle.name == "kserve-orchestrated" else "body"
    assert {r["retry_after_from"] for r in refused} == {expected}

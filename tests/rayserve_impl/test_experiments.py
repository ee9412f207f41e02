"""The three experiments, briefly, on one real local Ray Serve stack (vLLM generators on CPU).

Real Ray, real Serve controller and proxy, real locust load (streamed); sizes from the `smoke`
plan:
- rollback: `serve deploy` of a `user_config` making the post-processor fail half the requests
  (in place, no replica restarts), then of the original config;
- kill-replica: the post-processor's replica process is SIGKILLed; Serve's controller replaces it;
- overload: 3x the calibrated capacity on test-sized generator queues (a burst that cannot
  fit, see `experiment_checks.sized_for_overload`); refusals are 503 with a `Retry-After` header.
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


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[StackHandle, StackControl]]:
    sized = sized_for_overload(settings, PLAN)
    with experiment_stack("rayserve", sized, tmp_path_factory.mktemp("ray-logs")) as running:
        yield running


def test_rollback_flips_to_b_and_back(stack, tmp_path: Path) -> None:
    handle, control = stack
    result = run_on("rollback", handle, control, PLAN, tmp_path, Console())
    check_rollback(result, tmp_path)
    f = result["figures"]
    assert result["change"]["mode"] == "inplace"
    assert f["failed"] > 0 and f["time_to_detect_s"] is not None  # half failing (smoke) is detected
    assert f["extra_replicas"] == 0  # in place: the same replicas, reconfigured
    assert result["actions"]["rollout"]["replicas_restarted"] == []
    # restored: check_rollback asserts every answer after it is on A; how fast is printed
    print(f"time to restore: {f['time_to_restore_s']:.1f} s")
    assert f["time_to_restore_s"] is not None


def test_killed_replica_is_replaced(stack, tmp_path: Path) -> None:
    handle, control = stack
    result = run_on("kill-replica", handle, control, PLAN, tmp_path, Console())
    check_kill(result, tmp_path, handle.url)
    assert result["figures"]["target"] == "postprocessor"
    assert result["actions"]["kill"]["replica_id"]


def test_overload_is_refused_fast(stack, tmp_path: Path) -> None:
    handle, control = stack
    result = run_on("overload", handle, control, PLAN, tmp_path, Console())
    check_overload(result, tmp_path)
    refused = [r for r in load_records(tmp_path / "records.jsonl") if r["rejected"]]
    assert {r["retry_after_from"] for r in refused} == {"header"}

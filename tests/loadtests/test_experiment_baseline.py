"""The rollback's phases on a slow box: the baseline goes on until A has answered a request,
B's hold until `hold_responses` requests finished after the rollout off A, and the tail until
a request sent after the rollback was answered on A (each at most `recover_timeout_s` more), so
no action comes before its phase has its sample."""

from __future__ import annotations

import time
from types import SimpleNamespace

from loadtests.experiment_plans import Plan
from loadtests.experiments import Experiment

ROLLOUT, ROLLBACK = 1000.0, 1030.0  # when each action had taken effect (epoch seconds)


def runner(records: list[dict], phase_s: float = 0.2, cap_s: float = 30.0,
           hold_responses: int = 1) -> SimpleNamespace:
    """What the phases read: the plan, revision A, the records so far, the actions' times."""
    plan = Plan(baseline_s=phase_s, hold_s=phase_s, tail_s=phase_s, recover_timeout_s=cap_s,
                hold_responses=hold_responses)
    fake = SimpleNamespace(plan=plan, revision_a="a-1", records=lambda: records,
                           actions={"rollout": {"finished": ROLLOUT},
                                    "rollback": {"finished": ROLLBACK}})
    fake._serve_until_answered = lambda s, answered: Experiment._serve_until_answered(
        fake, s, answered)
    return fake


def timed(phase, fake: SimpleNamespace) -> float:
    started = time.monotonic()
    phase(fake)
    return time.monotonic() - started


def record(revision: str | None, sent: float = 990.0, e2e_ms: float = 5000.0,
           ok: bool = True) -> dict:
    return {"ok": ok, "revision": revision, "sent": sent, "e2e_ms": e2e_ms}


def test_an_answer_on_a_within_the_baseline_ends_it_on_time():
    assert timed(Experiment._baseline, runner([record("a-1")])) < 1.5  # 0.2 s, not the cap


def test_without_an_answer_on_a_the_baseline_goes_on_until_one_comes():
    records = [record(None, ok=False)]  # a failure is not an answer on A
    fake = runner(records, phase_s=1.0)
    started = time.monotonic()
    fake.records = lambda: (records.append(record("a-1"))
                            if time.monotonic() - started > 2.0 else None) or records
    Experiment._baseline(fake)
    assert 2.0 <= time.monotonic() - started < 8.0  # past baseline_s, ended by the answer


def test_the_wait_is_capped_at_recover_timeout():
    assert 1.0 <= timed(Experiment._baseline, runner([record("b-2")], cap_s=1.0)) < 4.0


def test_the_hold_counts_only_requests_finished_after_the_rollout_off_a():
    # finished before the rollout (sent 990 s + 5 s < 1000 s), or on A: the hold runs to its cap
    before = [record("a-1+b-2"), record("a-1", sent=999.0)]
    assert 1.0 <= timed(Experiment._hold, runner(before, cap_s=1.0)) < 4.0
    # one mixed answer (B in a stage) or one failure after the rollout ends it on time
    for after in (record("a-1+b-2", sent=999.0), record(None, sent=999.0, ok=False)):
        assert timed(Experiment._hold, runner([*before, after], cap_s=20.0)) < 5.0


def test_the_hold_goes_on_until_b_has_its_sample():
    # two off A after the rollout (one mixed answer, one failure) are not three
    two = [record("a-1+b-2", sent=999.0), record(None, sent=999.0, ok=False)]
    assert 1.0 <= timed(Experiment._hold, runner(two, cap_s=1.0, hold_responses=3)) < 4.0
    three = [*two, record("b-2", sent=999.5)]
    assert timed(Experiment._hold, runner(three, cap_s=20.0, hold_responses=3)) < 5.0


def test_the_tail_waits_for_a_request_sent_after_the_rollback_and_answered_on_a():
    # sent before the rollback (even if answered on A after it), mixed, or failed: not yet
    pending = [record("a-1", sent=1029.0), record("a-1+b-2", sent=1031.0),
               record(None, sent=1031.0, ok=False)]
    assert 1.0 <= timed(Experiment._tail, runner(pending, cap_s=1.0)) < 4.0
    assert timed(Experiment._tail, runner([*pending, record("a-1", sent=1031.0)])) < 5.0

"""Load shapes: exact arrival counts, seeded Poisson schedules, the shared slot schedule."""

from __future__ import annotations

import itertools
import statistics

import pytest

from loadtests.scenarios import SCENARIOS, get_scenario
from loadtests.shapes import (
    ArrivalPhase,
    ArrivalSchedule,
    ConcurrencyPhase,
    arrival_offsets,
    parse_phase,
    shape_tick,
)


def test_constant_arrivals_are_evenly_spaced_at_the_rate():
    offsets = arrival_offsets("constant", 0.5, 10)
    assert offsets == [0.0, 2.0, 4.0, 6.0, 8.0]


@pytest.mark.parametrize("rate,duration", [(0.4, 20), (0.5, 40), (3.0, 7), (10, 1)])
def test_poisson_sends_exactly_rate_times_duration_inside_the_phase(rate, duration):
    offsets = arrival_offsets("poisson", rate, duration, seed=3)
    assert len(offsets) == round(rate * duration)
    assert offsets == sorted(offsets)
    assert all(0 < t < duration for t in offsets)


def test_poisson_is_seeded_and_bursty():
    a = arrival_offsets("poisson", 2.0, 60, seed=1)
    assert a == arrival_offsets("poisson", 2.0, 60, seed=1)
    assert a != arrival_offsets("poisson", 2.0, 60, seed=2)
    gaps = [y - x for x, y in itertools.pairwise(a)]
    # exponential gaps: coefficient of variation near 1 (constant gaps would give 0)
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert 0.7 < cv < 1.3
    assert statistics.fmean(gaps) == pytest.approx(0.5, rel=0.1)


def test_unknown_arrival_kind_and_empty_inputs():
    with pytest.raises(ValueError, match="unknown arrival kind"):
        arrival_offsets("uniform", 1, 1)
    assert arrival_offsets("poisson", 0, 10) == []
    assert arrival_offsets("constant", 1, 0) == []


def test_schedule_hands_out_each_slot_once_in_order():
    schedule = ArrivalSchedule([0.0, 1.0, 2.5], started=100.0)
    assert [schedule.claim(), schedule.claim(), schedule.claim()] == [100.0, 101.0, 102.5]
    assert schedule.claim() is None
    assert schedule.claimed == 3


def test_shape_runs_the_whole_pool_for_the_phase_then_stops():
    closed = ConcurrencyPhase(name="c4", users=4, duration_s=10)
    assert shape_tick(closed, 0) == (4, 4.0)
    assert shape_tick(closed, 9.9) == (4, 4.0)
    assert shape_tick(closed, 10) is None
    open_loop = ArrivalPhase(kind="poisson", name="p", rate_rps=1, duration_s=5, max_users=6)
    assert shape_tick(open_loop, 1) == (6, 6.0)


def test_a_phase_sized_by_its_sample_runs_until_enough_were_sent_within_its_cap():
    c8 = ConcurrencyPhase(name="c8", users=8, duration_s=20, min_requests=22, max_duration_s=60)
    assert c8.longest_s == 60
    assert shape_tick(c8, 19, sent=40) == (8, 8.0)  # never shorter than duration_s
    assert shape_tick(c8, 20, sent=22) is None  # enough at the planned end: stops there
    assert shape_tick(c8, 35, sent=21) == (8, 8.0)  # a slow stack: on until its 22nd request
    assert shape_tick(c8, 35, sent=22) is None
    assert shape_tick(c8, 60, sent=3) is None  # the cap holds whatever the count
    assert ConcurrencyPhase(name="c", users=1, duration_s=5, min_requests=9).longest_s == 20
    assert ConcurrencyPhase(name="c", users=1, duration_s=5).longest_s == 5


def test_the_load_end_is_the_stamp_only_when_the_phase_ran_past_its_plan(tmp_path):
    from loadtests.locust_run import _load_ended

    stamp = tmp_path / "end"
    sized = ConcurrencyPhase(name="c8", users=8, duration_s=20, min_requests=22)
    plain = ConcurrencyPhase(name="c1", users=1, duration_s=20)
    assert _load_ended(stamp, 100.0, sized) == 120.0  # no stamp: the plan
    stamp.write_text("131.5")
    assert _load_ended(stamp, 100.0, sized) == 131.5
    assert _load_ended(stamp, 100.0, plain) == 120.0  # locust's start is not load time
    stamp.write_text("118.0")
    assert _load_ended(stamp, 100.0, sized) == 120.0


def test_phase_json_round_trip_picks_the_kind():
    phase = ArrivalPhase(kind="constant", name="k", rate_rps=0.5, duration_s=4)
    assert parse_phase(phase.model_dump_json()) == phase
    assert isinstance(parse_phase('{"kind": "concurrency", "name": "c", "users": 2, '
                                  '"duration_s": 3}'), ConcurrencyPhase)


def test_scenarios_fit_their_time_budgets():
    """smoke: three stacks in < 8 min; demo: < 25 min, leaving room for stack start-up
    (the end-to-end test times the real thing)."""
    smoke, demo = get_scenario("smoke"), get_scenario(None)
    assert demo.name == "demo"
    per_phase_drain = 15  # typical drain after a phase on this machine
    assert 3 * (smoke.load_seconds + per_phase_drain * len(smoke.phases)) <= 5 * 60
    assert 3 * (demo.load_seconds + per_phase_drain * len(demo.phases)) < 18 * 60
    for scenario in SCENARIOS.values():
        kinds = {p.kind for p in scenario.phases}
        assert "concurrency" in kinds and kinds & {"constant", "poisson"}
    with pytest.raises(KeyError, match="known: smoke, demo"):
        get_scenario("nope")

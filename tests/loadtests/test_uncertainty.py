"""Intervals, the n rules and the medians across repeats, on hand-made numbers with known
answers (loadtests.uncertainty, loadtests.results.phase_over_repeats)."""

from __future__ import annotations

import pytest

from loadtests import results
from loadtests.shapes import ConcurrencyPhase
from loadtests.uncertainty import bootstrap_interval, cell, intervals, shown, spread


def test_interval_of_identical_values_is_that_value():
    assert bootstrap_interval([250.0] * 30, 50) == (250.0, 250.0)
    assert bootstrap_interval([250.0] * 30, 95) == (250.0, 250.0)


def test_interval_is_seeded_and_brackets_the_percentile():
    values = [float(v) for v in range(1, 101)]  # p50 = 50.5
    first, again = bootstrap_interval(values, 50), bootstrap_interval(values, 50)
    assert first == again  # seeded: the same records give the same interval
    low, high = first
    assert low < 50.5 < high
    assert low > 35 and high < 66  # the sampling spread of a median of 100 uniform values
    # a wider spread of the same n gives a proportionally wider interval
    wide = bootstrap_interval([v * 10 for v in values], 50)
    assert wide == pytest.approx((low * 10, high * 10))


def test_no_interval_from_one_value():
    assert bootstrap_interval([5.0], 50) is None
    assert bootstrap_interval([], 50) is None


def test_p95_needs_20_samples_and_p99_100():
    assert not shown(95, 19) and shown(95, 20)
    assert not shown(99, 99) and shown(99, 100)
    assert shown(50, 1)
    nineteen = intervals([float(v) for v in range(19)], (50, 95, 99))
    assert nineteen["p50"] is not None and nineteen["p95"] is None and nineteen["p99"] is None
    twenty = intervals([float(v) for v in range(20)], (95, 99))
    assert twenty["p95"] is not None and twenty["p99"] is None


def test_cells_say_n_too_small_and_carry_the_interval():
    few = results.distribution([100.0, 200.0, 300.0])
    assert cell(few, 95) == "n too small (n=3)"
    assert cell(few, 99) == "n too small (n=3)"
    assert cell(few, 50).startswith("200 [")
    assert cell(results.distribution([]), 50) == "n/a"
    many = results.distribution([1000.0] * 25)
    assert cell(many, 95) == "1,000 [1,000–1,000]"
    assert many["n"] == 25 and many["ci"]["p95"] == [1000.0, 1000.0]


def test_spread_is_median_and_range_ignoring_missing_repeats():
    assert spread([3.0, 1.0, 2.0, None]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert spread([None]) == {"median": None, "min": None, "max": None, "n": 0}


def _records(repeat: int, start: float, e2e: float, count: int) -> list[dict]:
    # sends spread over the 10 s phase, every answer back inside it
    return [{"phase": "c1", "repeat": repeat, "sent": start + i * 9 / count, "ok": True,
             "e2e_ms": e2e,
             "ttft_ms": None, "tpot_ms": None, "tokens": 8, "error": None, "rejected": False}
            for i in range(count)]


def test_repeats_pool_percentiles_and_take_the_median_rate():
    phase = ConcurrencyPhase(name="c1", users=1, duration_s=10)
    # three repeats of a 10 s phase: 10, 30 and 20 answers -> 1, 3 and 2 req/s
    records = (_records(0, 0.0, 100.0, 10) + _records(1, 100.0, 300.0, 30)
               + _records(2, 200.0, 200.0, 20))
    spans = [(0.0, 10.0), (100.0, 110.0), (200.0, 210.0)]
    stats = results.phase_over_repeats(records, phase, spans)
    assert stats["repeats"] == 3
    assert stats["throughput_rps"] == pytest.approx(2.0)  # the median repeat
    assert stats["across_repeats"]["throughput_rps"]["min"] == pytest.approx(1.0)
    assert stats["across_repeats"]["throughput_rps"]["max"] == pytest.approx(3.0)
    assert stats["across_repeats"]["e2e_ms.p50"] == {"median": 200.0, "min": 100.0,
                                                     "max": 300.0, "n": 3}
    assert stats["e2e_ms"]["n"] == 60  # percentiles pool every repeat's requests
    # sorted: 10 x 100, 20 x 200, 30 x 300 ms; the median sits between the 30th (200) and the
    # 31st (300) value
    assert stats["e2e_ms"]["p50"] == pytest.approx(250.0)


def test_one_repeat_is_the_plain_phase():
    phase = ConcurrencyPhase(name="c1", users=1, duration_s=10)
    records = _records(0, 0.0, 100.0, 10)
    stats = results.phase_over_repeats(records, phase, [(0.0, 10.0)])
    plain = results.phase_stats(records, phase, 0.0, 10.0)
    assert stats["repeats"] == 1 and stats["throughput_rps"] == plain["throughput_rps"]
    assert stats["e2e_ms"] == plain["e2e_ms"]

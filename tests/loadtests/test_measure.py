"""Per-request measurement helpers and the per-phase statistics built from records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadtests import results
from loadtests.measure import failure_reason, tpot_ms
from loadtests.shapes import ArrivalPhase, ConcurrencyPhase


def test_failure_reason_reads_the_openai_error_body():
    body = json.dumps({"error": {"message": "messages: field required", "type": "x",
                                 "param": "messages", "code": 400}})
    assert failure_reason(400, body) == ("400 messages: field required", False)


def test_overload_is_marked_rejected_and_digits_are_grouped():
    body = json.dumps({"error": {"message": "generator queue is full (64 waiting, limit 64)"}})
    reason, rejected = failure_reason(503, body)
    assert rejected
    assert reason == "rejected 503: generator queue is full (N waiting, limit N)"
    assert failure_reason(429, "slow down")[1]


def test_failure_reason_for_non_json_and_detail_bodies():
    assert failure_reason(502, "Bad Gateway") == ("502 Bad Gateway", False)
    assert failure_reason(404, '{"detail": "Not Found"}') == ("404 Not Found", False)


def test_tpot_is_decode_time_per_token_after_the_first():
    assert tpot_ms(1000.0, 100.0, 10) == pytest.approx(100.0)
    assert tpot_ms(1000.0, None, 10) is None  # not streamed: no TTFT, no TPOT
    assert tpot_ms(1000.0, 100.0, 1) is None


def test_percentile_matches_numpy():
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    for p in (50, 90, 95, 99):
        assert results.percentile(values, p) == pytest.approx(np.percentile(values, p))
    assert results.percentile([], 50) is None


def _record(phase, sent, ok=True, e2e=1000.0, ttft=200.0, tokens=9, error=None,
            rejected=False, late=None):
    return {"phase": phase, "sent": sent, "ok": ok, "e2e_ms": e2e,
            "ttft_ms": ttft if ok else None, "tpot_ms": tpot_ms(e2e, ttft, tokens) if ok else None,
            "tokens": tokens if ok else None, "error": error, "rejected": rejected,
            "tier": "small", "server_ms": {"generate": e2e - 100}, "late_ms": late}


def test_phase_stats_closed_loop():
    phase = ConcurrencyPhase(name="c2", users=2, duration_s=10)
    records = [_record("c2", 100 + i, e2e=1000.0 + 100 * i) for i in range(8)]
    records.append(_record("c2", 105, ok=False, error="rejected 503: full", rejected=True))
    records.append(_record("other", 101))
    stats = results.phase_stats(records, phase, 100.0, 110.0)
    assert (stats["requests"], stats["ok"], stats["failed"], stats["rejected"]) == (9, 8, 1, 1)
    assert stats["failure_reasons"] == {"rejected 503: full": 1}
    assert stats["e2e_ms"]["p50"] == pytest.approx(1350.0)
    assert stats["ttft_ms"]["p50"] == 200.0
    assert stats["tpot_ms"]["p50"] == pytest.approx((1350.0 - 200.0) / 8)
    # 8 answers; the last one ends at 107 + 1.7 s, inside the 10 s of load
    assert stats["throughput_rps"] == pytest.approx(0.8)
    assert stats["output_tokens_per_s"] == pytest.approx(7.2)
    assert stats["server_stage_ms"]["generate"] == pytest.approx(1250.0)
    assert stats["users"] == 2


def test_phase_stats_open_loop_reports_requested_and_achieved_rate():
    phase = ArrivalPhase(kind="constant", name="k", rate_rps=1.0, duration_s=10)
    records = [_record("k", 100 + i, late=5.0 * i) for i in range(6)]
    stats = results.phase_stats(records, phase, 100.0, 110.0)
    assert stats["requested_rps"] == 1.0
    assert stats["achieved_rps"] == pytest.approx(0.6)
    assert stats["late_ms"]["max"] == 25.0


def test_overall_and_overhead():
    phase = ConcurrencyPhase(name="c1", users=1, duration_s=10)
    fast = results.phase_stats([_record("c1", 100, e2e=900.0)], phase, 100, 110)
    slow = results.phase_stats([_record("c1", 100, e2e=1000.0),
                                _record("c1", 101, ok=False, error="500 boom")], phase, 100, 110)
    totals = results.overall([slow])
    assert totals["error_rate"] == 0.5
    assert totals["failure_reasons"] == {"500 boom": 1}
    assert results.overhead({"phases": [slow]}, {"phases": [fast]}, "c1") == pytest.approx(100.0)
    assert results.overhead({"phases": [slow]}, {"phases": []}, "c1") is None

"""The client/server join by request id and the warm-up rule, on hand-made records with known
answers (loadtests.join, loadtests.warmup)."""

from __future__ import annotations

import pytest

from loadtests.join import join, join_stack, server_records
from loadtests.warmup import _has_text, steady_at


def _client(rid: str, server_rid: str | None, e2e: float, ok: bool = True) -> dict:
    return {"request_id": rid, "server_request_id": server_rid, "ok": ok, "e2e_ms": e2e,
            "server_ms": {"retrieve": 30.0, "generate": 40.0} if server_rid else None,
            "hop_ms": 10.0 if server_rid else None}


def test_join_gives_client_minus_server_time():
    client = [_client("a", "a", 100.0), _client("b", "b", 130.0), _client("c", "c", 90.0)]
    out = join_stack(client)
    # server time = 30 + 40 stage ms + 10 hop ms = 80 ms
    assert out["joined"] == 3 and out["id_honoured"] == 3
    assert out["client_minus_server_ms"]["p50"] == pytest.approx(20.0)
    assert out["client_minus_server_ms"]["min"] == pytest.approx(10.0)
    assert out["client_minus_server_ms"]["max"] == pytest.approx(50.0)


def test_a_server_span_longer_than_the_client_e2e_is_a_clock_step_left_out():
    # server span 80 ms for "a" and "c"; "b" took 500 ms by the client's monotonic clock while
    # the server's wall clock put 16 s into one hop: a step, counted and kept out of the
    # distribution. "c" is 50 ms shorter than its server span, within CLOCK_STEP_MS: kept.
    stepped = {**_client("b", "b", 500.0), "hop_ms": 16_000.0}
    steps = [_client("a", "a", 100.0), stepped, _client("c", "c", 30.0)]
    out = join_stack(steps)
    assert out["joined"] == 3 and out["clock_steps"] == 1
    assert out["client_minus_server_ms"]["n"] == 2
    assert out["client_minus_server_ms"]["min"] == pytest.approx(-50.0)
    assert out["client_minus_server_ms"]["max"] == pytest.approx(20.0)


def test_join_on_a_server_side_log_and_through_the_answer():
    # one server honoured the sent id, one made up its own (joined through the answer),
    # one request failed (never joined), one answer has no server record at all
    client = [_client("a", "a", 100.0), _client("b", "srv-7", 150.0),
              _client("c", None, 5.0, ok=False), _client("d", None, 120.0)]
    server = [{"request_id": "a", "server_ms": {"generate": 60.0}, "hop_ms": 0.0},
              {"request_id": "srv-7", "server_ms": {"generate": 100.0}, "hop_ms": 20.0}]
    out = join(client, server)
    assert out["client_ok"] == 3 and out["joined"] == 2 and out["id_honoured"] == 1
    assert sorted([out["client_minus_server_ms"]["min"], out["client_minus_server_ms"]["max"]]
                  ) == [pytest.approx(30.0), pytest.approx(40.0)]
    assert server_records(client)[1]["request_id"] == "srv-7"


def test_warm_up_is_steady_once_the_latency_stops_falling():
    # means of 3: 800 -> 263 (falling), ... then 263 -> 238: within 10 %, steady after 9
    falling_then_flat = [900, 800, 700, 300, 250, 240, 238, 236, 240]
    assert steady_at(falling_then_flat) == 9
    assert steady_at([100.0] * 6) == 6  # two full windows are the least it can decide on
    assert steady_at([100.0] * 6, minimum=8) is None  # the scenario's minimum comes first
    assert steady_at([100.0] * 8, minimum=8) == 8
    assert steady_at([1000, 800, 600, 400, 300, 200, 120, 80]) is None  # still falling
    assert steady_at([100, 100, 100, 150, 150, 150]) == 6  # rising is not falling


def test_warm_up_ttft_counts_only_chunks_with_text():
    assert not _has_text('data: {"choices": [{"delta": {"role": "assistant", "content": ""}}]}')
    assert _has_text('data: {"choices": [{"delta": {"content": "Hi"}}]}')
    assert not _has_text("data: [DONE]") and not _has_text(": keep-alive")


def test_a_phase_sums_each_answers_hops_and_leaves_out_the_clock_steps():
    # The per-answer hop total the headline shows (and issue 16's targets read): hops 10, 30
    # and 20 ms kept; "b" put a 16 s wall-clock step into its hops, so it is left out, as the
    # join leaves it out; a failed request has no answer to read.
    from loadtests import results
    from loadtests.shapes import ConcurrencyPhase

    records = [{**_client("a", "a", 100.0), "phase": "c1", "sent": 1.0},
               {**_client("b", "b", 500.0), "hop_ms": 16_000.0, "phase": "c1", "sent": 2.0},
               {**_client("c", "c", 120.0), "hop_ms": 30.0, "phase": "c1", "sent": 3.0},
               {**_client("d", "d", 110.0), "hop_ms": 20.0, "phase": "c1", "sent": 4.0},
               {**_client("e", None, 5.0, ok=False), "phase": "c1", "sent": 5.0}]
    hops = results.phase_stats(records, ConcurrencyPhase(name="c1", users=1, duration_s=10),
                               1.0, 11.0)["hop_ms"]
    assert hops["n"] == 3
    assert hops["mean"] == pytest.approx(20.0) and hops["p50"] == pytest.approx(20.0)

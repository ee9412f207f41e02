"""The figures of an experiment, computed from its raw data only: the per-request records locust
wrote, the actions the runner took (with wall-clock times) and the sampled timeline.

Pure functions, no I/O, so the tests can check every figure against the records it came from.
Times are wall-clock seconds (`time.time()`); a response *completes* at `sent + e2e`. A response
is "on A" when it succeeded and its `revision` (the served revision) is the original one.

Definitions (also in docs/experiments.md):
- time to detect: from the moment revision B takes traffic (the rollout action returned) to
  the first response completion at which the responses completed in the trailing `window_s`
  (stretched back to the last `min_requests` where fewer completed in it) breach the SLO:
  error rate above `max_error_rate`, or successful-response p95 above `latency_factor` x the
  p95 before the rollout. None when the SLO never breaks (a benign revision should not trip
  it). A breach while the rollout itself ran (new servers starting on the same cores) is
  reported apart, as `breach_during_rollout`.
- time to restore: from the rollback's start until the last completion of a response that was
  not on A (failed, or served by B); after it, every response is on A. 0 when none came after.
- longest stall: the longest time, from the rollout's start to the run's end, during which no
  response completed at all (a restart that stops every replica shows here, not in the restore
  time: requests wait instead of failing, and then complete on A).
- failed requests, cut streams (`stream cut ...` errors: a stream that began and broke),
  p99 inside the window (rollout start .. restore), extra replicas (peak of the summed replica
  count minus its first sample).
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Any

from loadtests.results import percentile

Record = dict[str, Any]


def completed_at(record: Record) -> float:
    return record["sent"] + (record.get("e2e_ms") or 0.0) / 1000


def is_cut(record: Record) -> bool:
    return (record.get("error") or "").startswith("stream cut")


def on_revision(record: Record, revision: str) -> bool:
    return bool(record.get("ok")) and record.get("revision") == revision


def retry_after_given(record: Record) -> bool:
    return record.get("retry_after") not in (None, "")


def counts(records: list[Record]) -> dict[str, Any]:
    failed = [r for r in records if not r.get("ok")]
    return {"requests": len(records), "ok": len(records) - len(failed), "failed": len(failed),
            "rejected": sum(1 for r in failed if r.get("rejected")),
            "cut_streams": sum(1 for r in failed if is_cut(r)),
            "failure_reasons": dict(Counter(r.get("error") or "unknown" for r in failed))}


def revision_runs(records: list[Record]) -> list[list[Any]]:
    """[[revision, n], ...] in completion order: the flips A -> B -> A at a glance (failed
    responses count as "failed")."""
    ordered = sorted(records, key=completed_at)
    labels = [r.get("revision") if r.get("ok") else "failed" for r in ordered]
    return [[label, len(list(run))] for label, run in groupby(labels)]


def slo_breach(records: list[Record], since: float, baseline_p95_ms: float | None,
               window_s: float, min_requests: int, max_error_rate: float,
               latency_factor: float) -> tuple[float, str] | None:
    """The first completion time >= `since` at which the trailing window breaks the SLO, and
    why; None if it never does. The window is the trailing `window_s`, stretched back to the
    `min_requests`-th last response where fewer completed in it: on a box where an answer
    takes longer than `window_s / min_requests`, a fixed window never holds enough to judge."""
    done = sorted(records, key=completed_at)
    for i, record in enumerate(done):
        t = completed_at(record)
        if t < since or i + 1 < min_requests:
            continue
        window = [r for r in done[: i + 1] if t - window_s < completed_at(r)]
        if len(window) < min_requests:
            window = done[i + 1 - min_requests: i + 1]
        errors = sum(1 for r in window if not r.get("ok")) / len(window)
        if errors > max_error_rate:
            return t, f"error rate {errors:.0%} over {len(window)} responses"
        ok = [r["e2e_ms"] for r in window if r.get("ok") and r.get("e2e_ms") is not None]
        p95 = percentile(ok, 95)
        if baseline_p95_ms and p95 is not None and p95 > latency_factor * baseline_p95_ms:
            return t, f"p95 {p95:.0f} ms > {latency_factor:g} x baseline {baseline_p95_ms:.0f} ms"
    return None


def longest_stall(records: list[Record], since: float) -> float | None:
    """The longest gap between consecutive completions at or after `since` (from `since`)."""
    done = sorted(t for t in map(completed_at, records) if t >= since)
    if not done:
        return None
    return max(b - a for a, b in zip([since, *done], done, strict=False))


def replica_figures(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [sum(s["replicas"].values()) for s in timeline if s.get("replicas")]
    if not totals:
        return {"replicas_at_start": None, "replicas_peak": None, "extra_replicas": None}
    return {"replicas_at_start": totals[0], "replicas_peak": max(totals),
            "extra_replicas": max(totals) - totals[0]}


def rollback_figures(records: list[Record], actions: dict[str, dict[str, Any]],
                     timeline: list[dict[str, Any]], revision_a: str, slo: dict[str, Any]
                     ) -> dict[str, Any]:
    """Figures of a rollback experiment; `actions` holds "rollout" and "rollback" with their
    `started`/`finished` wall-clock times."""
    rollout_at = actions["rollout"]["started"]
    rollback_at = actions["rollback"]["started"]
    before = [r["e2e_ms"] for r in records
              if r.get("ok") and completed_at(r) < rollout_at and r.get("e2e_ms") is not None]
    baseline_p95 = percentile(before, 95)
    takes_traffic = actions["rollout"]["finished"]
    breach = slo_breach(records, takes_traffic, baseline_p95, **slo)
    during = slo_breach([r for r in records if completed_at(r) < takes_traffic], rollout_at,
                        baseline_p95, **slo)
    not_a_after = [completed_at(r) for r in records
                   if completed_at(r) >= rollback_at and not on_revision(r, revision_a)]
    restored_at = max(not_a_after, default=rollback_at)
    window = [r for r in records if rollout_at <= completed_at(r) <= restored_at]
    window_ok = [r["e2e_ms"] for r in window if r.get("ok") and r.get("e2e_ms") is not None]
    on_b = [r for r in records if r.get("ok") and r.get("revision") not in (None, revision_a)]
    first_b = min((completed_at(r) for r in on_b), default=None)
    last_b = max((completed_at(r) for r in on_b), default=None)
    return {
        **counts(records),
        "revision_a": revision_a,
        "revisions_seen": dict(Counter(r.get("revision") for r in records if r.get("ok"))),
        "revision_runs": revision_runs(records),
        "responses_on_b": len(on_b),
        "first_b_response_s": None if first_b is None else first_b - rollout_at,
        "last_b_response_after_rollback_s": None if last_b is None else last_b - rollback_at,
        "baseline_p95_ms": baseline_p95,
        "time_to_detect_s": None if breach is None else breach[0] - takes_traffic,
        "detected_by": None if breach is None else breach[1],
        "breach_during_rollout": None if during is None else during[1],
        "rollout_took_s": actions["rollout"]["finished"] - rollout_at,
        "rollback_took_s": actions["rollback"]["finished"] - rollback_at,
        "time_to_restore_s": restored_at - rollback_at,
        "longest_stall_s": longest_stall(records, rollout_at),
        "responses_on_a_after_restore": sum(1 for r in records if completed_at(r) > restored_at
                                            and on_revision(r, revision_a)),
        "failed_in_window": sum(1 for r in window if not r.get("ok")),
        "cut_streams_in_window": sum(1 for r in window if is_cut(r)),
        "p99_in_window_ms": percentile(window_ok, 99),
        "p50_in_window_ms": percentile(window_ok, 50),
        **replica_figures(timeline),
    }


def kill_figures(records: list[Record], actions: dict[str, dict[str, Any]],
                 timeline: list[dict[str, Any]], target: str) -> dict[str, Any]:
    """Figures of a kill-replica experiment: what failed, and how long until the stack served
    again and the replacement was ready."""
    kill_at = actions["kill"]["started"]
    after = [r for r in records if completed_at(r) >= kill_at]
    failed_after = [completed_at(r) for r in after if not r.get("ok")]
    recovered_at = max(failed_after, default=kill_at)
    down = [s["t"] for s in timeline if s["t"] >= kill_at and s.get("replicas")
            and s["replicas"].get(target, 0) == 0]
    back = [s["t"] for s in timeline if down and s["t"] > down[0] and s.get("replicas")
            and s["replicas"].get(target, 0) >= 1]
    ok_after = [r["e2e_ms"] for r in after if r.get("ok") and r.get("e2e_ms") is not None]
    return {
        **counts(records),
        "target": target,
        "failed_after_kill": len(failed_after),
        "cut_streams_after_kill": sum(1 for r in after if is_cut(r)),
        "time_to_recover_s": recovered_at - kill_at,
        "served_after_recovery": sum(1 for r in records
                                     if r.get("ok") and completed_at(r) > recovered_at),
        "replica_seen_down_s": None if not down else down[0] - kill_at,
        "replacement_ready_s": None if not back else back[0] - kill_at,
        "longest_stall_s": longest_stall(records, kill_at),
        "p99_after_kill_ms": percentile(ok_after, 99),
        **replica_figures(timeline),
    }


def overload_figures(records: list[Record], calibration: list[Record], overload_phase: str,
                     capacity_rps: float, offered_rps: float,
                     after: list[Record]) -> dict[str, Any]:
    """Figures of an overload experiment: how fast refusals came and whether they said when to
    retry, how long admitted requests took, and whether the stack served afterwards."""
    load = [r for r in records if r.get("phase") == overload_phase]
    admitted = [r["e2e_ms"] for r in load if r.get("ok") and r.get("e2e_ms") is not None]
    rejected = [r for r in load if r.get("rejected")]
    refusal_ms = [r["e2e_ms"] for r in rejected if r.get("e2e_ms") is not None]
    sent = [r["sent"] for r in load]
    span = (max(sent) - min(sent)) if len(sent) > 1 else 0.0
    return {
        **counts(load),
        "capacity_rps": capacity_rps,
        "offered_rps": offered_rps,
        "sent_rps": (len(sent) - 1) / span if span > 0 else None,
        "calibration_requests": len(calibration),
        "admitted": len(admitted),
        "rejected_with_retry_after": sum(1 for r in rejected if retry_after_given(r)),
        "rejected_retry_after_values": dict(Counter(str(r.get("retry_after"))
                                                    for r in rejected)),
        "retry_after_from": dict(Counter(str(r.get("retry_after_from")) for r in rejected)),
        "rejection_p50_ms": percentile(refusal_ms, 50),
        "rejection_p99_ms": percentile(refusal_ms, 99),
        "admitted_p50_ms": percentile(admitted, 50),
        "admitted_p99_ms": percentile(admitted, 99),
        "admitted_max_ms": max(admitted, default=None),
        "other_failures": sum(1 for r in load if not r.get("ok") and not r.get("rejected")),
        "served_after": sum(1 for r in after if r.get("ok")),
        "asked_after": len(after),
    }

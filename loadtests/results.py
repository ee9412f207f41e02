"""Client-side numbers from the locust records: per phase, exact, nothing bucketed.

Locust's own CSV/JSON round response times to two significant digits and mix the pseudo-request
rows in; the per-request records the locustfile writes give exact percentiles, the phase of
every request, and the send time needed for requested-vs-achieved rates. Locust's files are
kept beside them, raw, as a cross-check.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from loadtests.shapes import ArrivalPhase, ConcurrencyPhase
from loadtests.uncertainty import intervals, spread

PERCENTILES = (50, 90, 95, 99)
CLOCK_STEP_MS = 100.0  # server span over client e2e beyond any rounding between the two clocks


def load_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), None for no values."""
    return float(np.percentile(values, p)) if values else None


def distribution(values: list[float]) -> dict[str, float | None]:
    """mean, p50/p90/p95/p99, min, max of one metric (ms), n, and each percentile's bootstrap
    95% interval under `ci` (None where n is too small for that percentile)."""
    out: dict[str, Any] = {"n": len(values),
                                    "mean": statistics.fmean(values) if values else None,
                                    "min": min(values) if values else None,
                                    "max": max(values) if values else None}
    for p in PERCENTILES:
        out[f"p{p}"] = percentile(values, p)
    out["ci"] = intervals(values, PERCENTILES)
    return out


def phase_stats(records: list[dict[str, Any]], phase: ConcurrencyPhase | ArrivalPhase,
                started: float, ended: float) -> dict[str, Any]:
    """Everything the report shows for one phase of one stack.

    `started`/`ended` bound the phase's load (not its drain): rates are per second of load.
    Throughput counts requests *completed* successfully, over the time from the phase start to
    the last answer, so a phase whose requests drain after the load still counts them fairly.
    """
    mine = [r for r in records if r.get("phase") == phase.name]
    ok = [r for r in mine if r.get("ok")]
    failed = [r for r in mine if not r.get("ok")]
    duration = max(ended - started, 1e-9)
    last_answer = max((r["sent"] + (r["e2e_ms"] or 0) / 1000 for r in ok), default=ended)
    busy = max(last_answer - started, duration)
    tokens = sum(r.get("tokens") or 0 for r in ok)
    stats: dict[str, Any] = {
        "phase": phase.name, "kind": phase.kind, "load": phase.load,
        "duration_s": duration, "requests": len(mine), "ok": len(ok), "failed": len(failed),
        "rejected": sum(1 for r in failed if r.get("rejected")),
        "failure_reasons": dict(Counter(r.get("error") or "unknown" for r in failed)),
        "throughput_rps": len(ok) / busy,
        "output_tokens_per_s": tokens / busy,
        "e2e_ms": distribution([r["e2e_ms"] for r in ok if r.get("e2e_ms") is not None]),
        "ttft_ms": distribution([r["ttft_ms"] for r in ok if r.get("ttft_ms") is not None]),
        "tpot_ms": distribution([r["tpot_ms"] for r in ok if r.get("tpot_ms") is not None]),
        "tokens_per_request": tokens / len(ok) if ok else None,
        "tiers": dict(Counter(r.get("tier") or "none" for r in ok)),
        "prompt_tokens": distribution([r["prompt_tokens"] for r in ok
                                       if r.get("prompt_tokens") is not None]),
        "server_stage_ms": _server_stage_means(ok),
        # each answer's hops summed (the server's stamps), the figure issue 16's targets read
        "hop_ms": distribution([r["hop_ms"] for r in ok
                                if r.get("hop_ms") is not None and not clock_stepped(r)]),
    }
    if isinstance(phase, ArrivalPhase):
        sent = [r["sent"] for r in mine]
        stats["requested_rps"] = phase.rate_rps
        stats["achieved_rps"] = len(sent) / duration
        late = [r.get("late_ms") or 0.0 for r in mine]
        stats["late_ms"] = distribution(late)
    else:
        stats["users"] = phase.users
    return stats


# Figures that are one number per repeat (rates): the phase reports their median and range.
PER_REPEAT = ("throughput_rps", "output_tokens_per_s")
PER_REPEAT_PERCENTILES = (("e2e_ms", "p50"), ("e2e_ms", "p95"), ("ttft_ms", "p50"))


def phase_over_repeats(records: list[dict[str, Any]], phase: ConcurrencyPhase | ArrivalPhase,
                       spans: list[tuple[float, float]]) -> dict[str, Any]:
    """One phase run `len(spans)` times (records carry `repeat`, 0-based; spans are each
    repeat's (load start, load end)).

    Percentiles come from every repeat's requests pooled (more samples, a tighter interval);
    rates are the median across repeats. `across_repeats` holds, per figure, the median and
    range across repeats, so the reader sees how much a rerun moves it.
    """
    if len(spans) == 1:
        stats = phase_stats(records, phase, *spans[0])
        return {**stats, "repeats": 1, "across_repeats": {}}
    mine = [r for r in records if r.get("phase") == phase.name]
    each = [phase_stats([r for r in mine if r.get("repeat", 0) == i], phase, start, end)
            for i, (start, end) in enumerate(spans)]
    pooled = phase_stats(mine, phase, spans[0][0], spans[0][1])
    across = {key: spread([s[key] for s in each]) for key in PER_REPEAT}
    for metric, stat in PER_REPEAT_PERCENTILES:
        across[f"{metric}.{stat}"] = spread([s[metric][stat] for s in each])
    for key in PER_REPEAT:
        pooled[key] = across[key]["median"]
    pooled["duration_s"] = statistics.median(s["duration_s"] for s in each)
    if "achieved_rps" in pooled:
        pooled["achieved_rps"] = statistics.median(s["achieved_rps"] for s in each)
    return {**pooled, "repeats": len(spans), "across_repeats": across}


def server_total_ms(record: dict[str, Any]) -> float:
    """First-stage entry to last-stage exit of one answer, as the stages stamped it."""
    return sum((record.get("server_ms") or {}).values()) + (record.get("hop_ms") or 0.0)


def clock_stepped(record: dict[str, Any]) -> bool:
    """Whether the server's span exceeds the client's e2e by more than CLOCK_STEP_MS: the
    stages stamp wall-clock time across processes, the client a monotonic clock, so such an
    answer saw the wall clock step (loadtests.join)."""
    e2e = record.get("e2e_ms")
    return e2e is not None and e2e - server_total_ms(record) < -CLOCK_STEP_MS


def _server_stage_means(ok: list[dict[str, Any]]) -> dict[str, float]:
    """Mean per-stage time the server itself reported in each answer's `pipeline.timings`."""
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for r in ok:
        for stage, ms in (r.get("server_ms") or {}).items():
            sums[stage] += ms
            counts[stage] += 1
    return {stage: sums[stage] / counts[stage] for stage in sums}


def overall(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every phase of one stack."""
    requests = sum(p["requests"] for p in phases)
    failed = sum(p["failed"] for p in phases)
    reasons: Counter[str] = Counter()
    for p in phases:
        reasons.update(p["failure_reasons"])
    return {"requests": requests, "ok": sum(p["ok"] for p in phases), "failed": failed,
            "rejected": sum(p["rejected"] for p in phases),
            "error_rate": failed / requests if requests else None,
            "failure_reasons": dict(reasons),
            "peak_throughput_rps": max((p["throughput_rps"] for p in phases), default=None),
            "peak_output_tokens_per_s": max((p["output_tokens_per_s"] for p in phases),
                                            default=None)}


def overhead(stack: dict[str, Any], reference: dict[str, Any], phase: str,
             metric: str = "e2e_ms", stat: str = "p50") -> float | None:
    """The serving layer's cost at one phase: stack minus in-process reference (ms)."""
    def pick(result: dict[str, Any]) -> float | None:
        for p in result.get("phases", []):
            if p["phase"] == phase:
                return p[metric].get(stat)
        return None

    a, b = pick(stack), pick(reference)
    return a - b if a is not None and b is not None else None

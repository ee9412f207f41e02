"""Soak benchmark: steady load for a long time, watching for leaks and drift.

    python -m loadtests.soak --stack kserve --minutes 30 [--rate R] [--out DIR]

A benchmark, not a test. It starts the stack with the harness's launcher (`loadtests.stacks`),
measures capacity briefly (a closed-loop locust phase; skipped when `--rate` is given), then
holds an open-loop constant arrival rate of `--load-share` (70%) of it for `--minutes`, with the
same locust runner and locustfile as every benchmark. Every few seconds it samples the RSS and
open file descriptors of every process of the stack (`loadtests.soak_sampler`). The result:

- `soak.json`: rate, requests, failures by reason, latency of the first and last window (five
  minutes, or a fifth of a run shorter than 25 minutes) and their drift, RSS and fds per process
  at start and end, and every sample;
- `soak.png`: RSS and fds per process, and e2e latency of every request, over time;
- `raw/`: locust's own files and `records.jsonl` (one line per request).

Leaks show as RSS or fds that climb for the whole run rather than level off after warm-up;
drift as a last-window p50 above the first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from loadtests.locust_run import run_locust
from loadtests.results import load_records, percentile
from loadtests.scenarios import Scenario
from loadtests.shapes import ArrivalPhase, ConcurrencyPhase
from loadtests.soak_plot import plot_soak
from loadtests.soak_sampler import Sampler, canonical
from loadtests.stacks import STACKS, StackHandle, launch
from shared_pipeline.config import Settings

WINDOW_S = 300.0  # first vs last five minutes...
MIN_WINDOWS = 5  # ...or first vs last fifth of a shorter run


def scenario(max_tokens: int, phase: ArrivalPhase | ConcurrencyPhase) -> Scenario:
    return Scenario(name="soak", description="steady load for leaks and drift",
                    max_tokens=max_tokens, warmup_requests=0, phases=[phase],
                    stop_timeout_s=30.0)


def calibrate(handle: StackHandle, users: int, seconds: float, max_tokens: int,
              raw: Path) -> float:
    """Requests per second the stack answers with `users` closed-loop users (its capacity)."""
    phase = ConcurrencyPhase(name="calibrate", users=users, duration_s=seconds)
    run_locust(handle, phase, scenario(max_tokens, phase), raw)
    ok = [r for r in load_records(raw / "records.jsonl") if r["phase"] == "calibrate" and r["ok"]]
    (raw / "records.jsonl").rename(raw / "calibrate_records.jsonl")
    if not ok:
        raise SystemExit("calibration answered no request; see the stack's logs")
    first = min(r["sent"] for r in ok)
    last = max(r["sent"] + r["e2e_ms"] / 1000 for r in ok)
    return len(ok) / max(last - first, 1e-3)


def window_stats(records: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    rows = [r for r in records if start <= r["sent"] < end]
    e2e = [r["e2e_ms"] for r in rows if r["ok"] and r["e2e_ms"] is not None]
    return {"from_s": start, "to_s": end, "requests": len(rows),
            "failures": sum(not r["ok"] for r in rows),
            "e2e_p50_ms": percentile(e2e, 50), "e2e_p95_ms": percentile(e2e, 95)}


def drift(records: list[dict[str, Any]], started: float, duration_s: float) -> dict[str, Any]:
    """Latency of the first and last window and how much the last moved against the first."""
    window = min(WINDOW_S, duration_s / MIN_WINDOWS)
    first = window_stats(records, started, started + window)
    last = window_stats(records, started + duration_s - window, started + duration_s)
    for side in (first, last):
        side["from_s"] -= started
        side["to_s"] -= started
    p50_a, p50_b = first["e2e_p50_ms"], last["e2e_p50_ms"]
    return {"window_s": window, "first": first, "last": last,
            "p50_drift_ms": None if p50_a is None or p50_b is None else p50_b - p50_a,
            "p50_drift_ratio": None if not p50_a or p50_b is None else p50_b / p50_a}


def per_process(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """RSS and fds of each process at its first and last sample, and its peak RSS."""
    out: dict[str, dict[str, Any]] = {}
    for s in samples:
        for name, row in s["processes"].items():
            entry = out.setdefault(canonical(name), {"rss_start_mib": row["rss_mib"],
                                          "fds_start": row["fds"], "rss_peak_mib": 0.0})
            entry.update(rss_end_mib=row["rss_mib"], fds_end=row["fds"])
            entry["rss_peak_mib"] = max(entry["rss_peak_mib"], row["rss_mib"])
    return out


def summarise(records: list[dict[str, Any]], started: float, duration_s: float) -> dict[str, Any]:
    failures: dict[str, int] = {}
    for r in records:
        if not r["ok"]:
            reason = str(r.get("error") or r.get("status"))[:120]
            failures[reason] = failures.get(reason, 0) + 1
    e2e = [r["e2e_ms"] for r in records if r["ok"] and r["e2e_ms"] is not None]
    return {"requests": len(records), "ok": len(e2e), "failures": sum(failures.values()),
            "failure_reasons": failures,
            "achieved_rps": len(records) / duration_s if duration_s else None,
            "e2e_p50_ms": percentile(e2e, 50), "e2e_p95_ms": percentile(e2e, 95),
            "drift": drift(records, started, duration_s)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or Path("reports") / "soak" / f"{args.stack}-{stamp}"
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "records.jsonl").unlink(missing_ok=True)
    sampler = Sampler(args.sample_s)
    with launch(args.stack, Settings(), out / "logs") as handle:
        print(f"{args.stack} up in {handle.startup_s:.0f} s at {handle.url}", flush=True)
        capacity = None
        rate = args.rate
        if rate is None:
            capacity = calibrate(handle, args.calibrate_users, args.calibrate_s,
                                 args.max_tokens, raw)
            rate = args.load_share * capacity
            print(f"capacity {capacity:.2f} req/s; soak at {rate:.2f} req/s", flush=True)
        duration_s = args.minutes * 60
        phase = ArrivalPhase(kind="constant", name="soak", rate_rps=rate, duration_s=duration_s,
                             max_users=args.max_users)
        sampler.tick()
        started = time.time()
        timing = run_locust(handle, phase, scenario(args.max_tokens, phase), raw,
                            on_tick=sampler.tick)
        sampler.tick()
    records = [r for r in load_records(raw / "records.jsonl") if r["phase"] == "soak"]
    result = {"stack": args.stack, "engine": handle.engine, "minutes": args.minutes,
              "capacity_rps": capacity, "rate_rps": rate, "load_share": args.load_share,
              "max_tokens": args.max_tokens, "sample_s": args.sample_s, "started": started,
              "locust_exit_code": timing["exit_code"],
              **summarise(records, started, duration_s),
              "processes": per_process(sampler.samples), "samples": sampler.samples}
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    plot_soak(result, records, started, out / "soak.png")
    return {"out": str(out), **{k: v for k, v in result.items() if k != "samples"}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.soak",
                                description=__doc__.splitlines()[0])
    p.add_argument("--stack", choices=STACKS, required=True)
    p.add_argument("--minutes", type=float, required=True, help="length of the steady load")
    p.add_argument("--rate", type=float, default=None,
                   help="requests per second (default: --load-share of measured capacity)")
    p.add_argument("--load-share", type=float, default=0.7, help="share of capacity to hold")
    p.add_argument("--calibrate-s", type=float, default=30.0, help="capacity measurement")
    p.add_argument("--calibrate-users", type=int, default=4)
    p.add_argument("--max-users", type=int, default=16, help="cap on requests in flight")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--sample-s", type=float, default=5.0, help="process sampling interval")
    p.add_argument("--out", type=Path, default=None, help="output dir (default reports/soak/...)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    summary = run(parse_args(argv))
    summary.pop("processes")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

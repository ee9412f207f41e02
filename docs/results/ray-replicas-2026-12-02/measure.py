"""Ray Serve under c4 -> c8 with one replica per deployment, then with the autoscaling config.

Why one cluster for both: a fresh Ray stack takes ~2.5 min to start on 2 cores, and the two
configs differ only in `num_replicas` / `autoscaling_config`, which Serve applies in place (no
replica restarts). The stack starts pinned (what local comparisons now deploy), is measured,
then gets the manifest's autoscaling config by `serve deploy` and is measured again, starting
from the same one replica per deployment. Each measurement is `twinserve bench --url` over the
running stack (the harness: warm-up, locust phases, Prometheus server-side figures), while a
thread polls Serve's REST API for every deployment's replicas.

    flock /tmp/twinserve-heavy.lock python docs/results/ray-replicas-2026-12-02/measure.py OUT
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from loadtests import harness
from loadtests.remote import RemoteTarget
from loadtests.scenario_file import load_scenario_file
from loadtests.stacks import with_engine
from rayserve_impl.local import RunningStack, running_stack
from rayserve_impl.rollout import deployment_details, pending, replica_ids
from rayserve_impl.serve_config import local_config, one_replica_each
from shared_pipeline.config import Settings
from shared_pipeline.shutdown import graceful_signals

HERE = Path(__file__).resolve().parent
SCALING_WORDS = ("pscal", "ownscal", "replicas from", "Adding", "Removing")


def poll(stack: RunningStack, seen: list[dict[str, Any]], stop: threading.Event) -> None:
    """Every deployment's target and replica states, once a second, into `seen`."""
    while not stop.wait(1.0):
        try:
            details = deployment_details(stack.dashboard.status())
        except httpx.HTTPError:  # a missed sample is a gap, not a failure
            continue
        seen.append({"t": time.time(), "mono": time.monotonic(),
                     "load1": os.getloadavg()[0], "deployments": {
            name: {"target": d.get("target_num_replicas"),
                   "states": [r.get("state") for r in d.get("replicas") or []]}
            for name, d in details.items()}})


def clock_step_s(seen: list[dict[str, Any]]) -> float:
    """Largest jump of the wall clock against the monotonic one between two polls: the
    server-side figures are wall-clock differences, the client's are monotonic."""
    pairs = itertools.pairwise(seen)
    return max((abs((b["t"] - a["t"]) - (b["mono"] - a["mono"])) for a, b in pairs),
               default=0.0)


def replicas_in(seen: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Per deployment: most replicas (any state), most RUNNING, highest target in [start, end]."""
    out: dict[str, Any] = {}
    for sample in (s for s in seen if start <= s["t"] <= end):
        for name, d in sample["deployments"].items():
            row = out.setdefault(name, {"max_replicas": 0, "max_running": 0, "max_target": 0})
            row["max_replicas"] = max(row["max_replicas"], len(d["states"]))
            row["max_running"] = max(row["max_running"], d["states"].count("RUNNING"))
            row["max_target"] = max(row["max_target"], d["target"] or 0)
    return out


def scaling_lines(stack: RunningStack) -> list[str]:
    """The Serve controller's own log lines about replica counts (upscale, downscale)."""
    lines: list[str] = []
    for log in stack.temp_dir.glob("session_latest/logs/serve/controller_*.log"):
        lines += [line.strip()[:300] for line in log.read_text(errors="replace").splitlines()
                  if any(w in line for w in SCALING_WORDS)]
    return lines[-60:]


def summary(mode: str, result: dict[str, Any], seen: list[dict[str, Any]],
            bench_end: float) -> dict[str, Any]:
    phases = []
    windows = {w["phase"]: w for w in result["windows"]}
    for p in result["phases"]:
        w = windows[p["phase"]]
        server = result["server"].get("phases", {}).get(p["phase"], {})
        phases.append({
            "phase": p["phase"], "requests": p["requests"], "ok": p["ok"], "failed": p["failed"],
            "req_s": p["throughput_rps"], "e2e_n": p["e2e_ms"]["n"],
            "e2e_p50_ms": p["e2e_ms"]["p50"], "e2e_p95_ms": p["e2e_ms"]["p95"],
            "ttft_p50_ms": p["ttft_ms"]["p50"],
            "hop_mean_ms": {k: v["mean_s"] * 1e3 for k, v in
                            server.get("hop_seconds", {}).items() if v.get("mean_s") is not None},
            "stage_mean_ms": {k: v["mean_s"] * 1e3 for k, v in
                              server.get("stage_seconds", {}).items()
                              if v.get("mean_s") is not None},
            "replicas": replicas_in(seen, w["started"], w["finished"])})
    c8_end = windows["c8"]["finished"]
    return {"mode": mode, "phases": phases,
            "replicas_after_c8": replicas_in(seen, c8_end, bench_end),
            "replicas_whole_run": replicas_in(seen, 0, bench_end),
            "max_load1": max((s["load1"] for s in seen), default=None),
            "max_clock_step_s": clock_step_s(seen)}


def measure(mode: str, stack: RunningStack, settings: Settings, out: Path,
            seen: list[dict[str, Any]]) -> dict[str, Any]:
    target = RemoteTarget("rayserve", stack.url, (stack.metrics_url,), engine="vllm")
    result = harness.bench(settings, "rayserve", load_scenario_file(HERE / "c4c8.yaml"),
                           out / mode, Console(), remote=target)
    return summary(mode, result, seen, time.time())


def scaling_config(stack: RunningStack) -> dict[str, Any]:
    """What Serve says each deployment runs with: num_replicas, autoscaling on or off."""
    return {name: {"num_replicas": (d.get("deployment_config") or {}).get("num_replicas"),
                   "autoscaling": (d.get("deployment_config") or {}).get("autoscaling_config")
                   is not None}
            for name, d in deployment_details(stack.dashboard.status()).items()}


def redeploy(stack: RunningStack, config: dict[str, Any], timeout_s: float = 120
             ) -> dict[str, Any]:
    """`serve deploy` of `config`: seconds until live, replicas restarted, what Serve runs."""
    before = replica_ids(stack.dashboard.status())
    started = time.time()
    stack.dashboard.deploy(config)
    while time.time() - started < timeout_s:
        status = stack.dashboard.status()
        if pending(status, config, started, set()) is None:
            return {"live_after_s": time.time() - started,
                    "replicas_restarted": len(before - replica_ids(status)),
                    "serve_says": scaling_config(stack)}
        time.sleep(0.5)
    raise TimeoutError("the autoscaling config did not go live")


def main(out: Path) -> None:
    settings = with_engine(Settings(), "vllm")  # what `launch("rayserve", ...)` passes
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    record: dict[str, Any] = {"runs": [], "began": time.time()}

    def save() -> None:  # after each run: a later failure keeps what was measured
        record["total_s"] = time.time() - record["began"]
        (out / "summary.json").write_text(json.dumps(record, indent=2, default=str))
        (out / "polls.json").write_text(json.dumps(seen))

    out.mkdir(parents=True, exist_ok=True)
    with graceful_signals(), running_stack(settings, overrides=one_replica_each()) as stack:
        record["startup_s"] = stack.startup_s
        print(f"{time.strftime('%T')} Ray up in {stack.startup_s:.0f}s", flush=True)
        poller = threading.Thread(target=poll, args=(stack, seen, stop), daemon=True)
        poller.start()
        try:
            pinned = scaling_config(stack)
            record["runs"].append({**measure("one-replica", stack, settings, out, seen),
                                   "serve_says": pinned})
            save()
            print(f"{time.strftime('%T')} one-replica measured; switching", flush=True)
            port = int(stack.url.rsplit(":", 1)[1])
            switched = redeploy(stack, local_config(settings, port))
            record["runs"].append({**measure("autoscaling", stack, settings, out, seen),
                                   **switched})
        finally:
            stop.set()
            record["controller_scaling_log"] = scaling_lines(stack)
            save()
    print(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

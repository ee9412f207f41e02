"""Ray Serve under c4 -> c8: one replica per deployment, or the manifest's autoscaling config.

One fresh local Ray stack per call (`rayserve_impl.local.running_stack`, as `launch` starts it),
measured with `twinserve bench --url` over it (the harness: warm-up, locust phases, Prometheus
server-side figures), while a thread polls Serve's REST API for every deployment's replicas, the
load average, the wall clock against the monotonic one, and the busiest processes on the host.
(Switching one running stack between the two configs is no shortcut: Serve replaces every
replica when `autoscaling_config` comes back, which is a full restart of both vLLM engines.)

    flock /tmp/twinserve-heavy.lock python docs/results/ray-replicas-2026-12-02/measure.py \
        {one-replica|autoscaling} OUT
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
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
from rayserve_impl.rollout import deployment_details
from rayserve_impl.serve_config import load_serve_config
from shared_pipeline.config import Settings
from shared_pipeline.shutdown import graceful_signals

HERE = Path(__file__).resolve().parent
SCALING_WORDS = ("pscal", "ownscal", "replicas from", "Adding", "Removing")


def busiest(count: int = 6) -> list[str]:
    """The host's busiest processes now (%CPU since start, command cut short)."""
    out = subprocess.run(["ps", "-eo", "pcpu,etimes,args", "--sort=-pcpu"], check=False,
                         capture_output=True, text=True).stdout.splitlines()[1:count + 1]
    return [line.strip()[:110] for line in out]


def poll(stack: RunningStack, seen: list[dict[str, Any]], stop: threading.Event) -> None:
    """Every deployment's target and replica states, once a second, into `seen`."""
    ticks = 0
    while not stop.wait(1.0):
        ticks += 1
        try:
            details = deployment_details(stack.dashboard.status())
        except httpx.HTTPError:  # a missed sample is a gap, not a failure
            continue
        seen.append({"t": time.time(), "mono": time.monotonic(),
                     "load1": os.getloadavg()[0],
                     **({"busiest": busiest()} if ticks % 20 == 1 else {}), "deployments": {
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


# Serve's autoscaler off, one replica per deployment (`num_replicas` and `autoscaling_config` are
# exclusive in Serve, so the latter is nulled); "autoscaling" deploys the manifest as it is.
ONE_REPLICA = {"num_replicas": 1, "autoscaling_config": None}
MODES = {"one-replica": {d["name"]: dict(ONE_REPLICA)
                         for d in load_serve_config()["applications"][0]["deployments"]},
         "autoscaling": None}


def main(mode: str, out: Path) -> None:
    settings = with_engine(Settings(), "vllm")  # what `launch("rayserve", ...)` passes
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    began = time.time()
    out.mkdir(parents=True, exist_ok=True)
    with graceful_signals(), running_stack(settings, overrides=MODES[mode]) as stack:
        print(f"{time.strftime('%T')} Ray up in {stack.startup_s:.0f}s", flush=True)
        poller = threading.Thread(target=poll, args=(stack, seen, stop), daemon=True)
        poller.start()
        try:
            serve_says = scaling_config(stack)
            run = {**measure(mode, stack, settings, out, seen), "serve_says": serve_says,
                   "startup_s": stack.startup_s}
        finally:
            stop.set()
            log = scaling_lines(stack)
            (out / f"polls-{mode}.json").write_text(json.dumps(seen))
    run.update(controller_scaling_log=log, total_s=time.time() - began,
               busiest=[s["busiest"] for s in seen if "busiest" in s])
    (out / f"{mode}.json").write_text(json.dumps(run, indent=2, default=str))
    print(json.dumps({k: v for k, v in run.items() if k != "busiest"}, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))

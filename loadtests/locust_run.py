"""One load phase as a headless locust subprocess.

Locust runs as a managed child (`shared_pipeline.processes.ManagedProcess`): its own session,
a parent-death signal and the watchdog, so an interrupted or killed harness never leaves load
running against a stack. A phase that overruns its limit is stopped with SIGTERM (locust then
writes its CSV and JSON), then SIGKILL.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests.scenarios import Scenario
from loadtests.shapes import LOAD_END_ENV, PHASE_ENV
from loadtests.stacks import StackHandle
from shared_pipeline.processes import ManagedProcess

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
OVERRUN_S = 90  # beyond the phase and its stop timeout, before the run is cut


def run_locust(handle: StackHandle, phase, scenario: Scenario, raw_dir: Path,
               on_tick: Callable[[], None] | None = None,
               stream: bool | None = None,
               extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One phase as a headless locust subprocess; returns its timing and exit status."""
    prefix = raw_dir / f"locust_{phase.name}"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "--host", handle.url, "--csv", str(prefix), "--csv-full-history",
           "--json-file", str(prefix), "--only-summary", "--loglevel", "WARNING",
           "--stop-timeout", f"{scenario.stop_timeout_s:g}", "--exit-code-on-error", "0",
           "--records", str(raw_dir / "records.jsonl"), "--stack-name", handle.name,
           "--max-tokens", str(scenario.max_tokens)]
    if not (handle.streams if stream is None else stream):
        cmd.append("--no-stream")
    load_end = raw_dir / f"locust_{phase.name}.load_end"
    load_end.unlink(missing_ok=True)
    env = {**os.environ, PHASE_ENV: phase.model_dump_json(), LOAD_END_ENV: str(load_end),
           "TWINSERVE_IGNORE_EOS": "1" if scenario.ignore_eos else "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           **(extra_env or {})}
    limit = phase.longest_s + scenario.stop_timeout_s + OVERRUN_S
    log_path = raw_dir / f"locust_{phase.name}.log"
    log_path.unlink(missing_ok=True)  # one log per phase run, as before
    proc = ManagedProcess(f"locust {phase.name}", cmd, log_path, cwd=REPO)
    started = time.time()
    proc.start(env)
    try:
        while proc.exit_code() is None and time.time() - started <= limit:
            if on_tick:
                on_tick()
            time.sleep(0.5)
    finally:
        proc.stop(grace_s=10)  # at once when it has exited; else the overrun or an interrupt
    return {"phase": phase.name, "started": started, "load_ended": _load_ended(load_end, started,
                                                                               phase),
            "finished": time.time(), "exit_code": proc.exit_code(), "command": cmd}


def _load_ended(stamp: Path, started: float, phase) -> float:
    """When the phase's load ended: `started + duration_s` as planned (`started` is taken before
    locust starts, as for every phase), or, for a phase that ran past it to reach its
    `min_requests`, the end the locustfile stamped."""
    planned = started + phase.duration_s
    if not getattr(phase, "min_requests", 0):
        return planned
    try:
        return max(planned, float(stamp.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return planned

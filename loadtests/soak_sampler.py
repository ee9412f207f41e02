"""The resources of every process of a running stack, sampled over a soak.

A stack's processes are the launcher's descendants plus whatever shares a session with one of
them: `ray start` daemonises raylet, GCS and workers, which leave the process tree but keep the
session `ManagedProcess` gave `ray start`. The load generator (locust) is left out: it is the
client, not the stack.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from typing import Any

import psutil

CLIENT_MARKERS = ("locust",)


def _label(proc: psutil.Process) -> str:
    """A readable name: the module or program a process runs (`kserve_impl.server`, `raylet`)."""
    cmd = proc.cmdline()
    if "-m" in cmd[:-1]:
        name = cmd[cmd.index("-m") + 1]
    else:
        name = os.path.basename(cmd[0]) if cmd else proc.name()
    if name.startswith("ray::") or proc.name().startswith("ray::"):
        name = proc.name()
    return f"{name}[{proc.pid}]"


def stack_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """The processes of the stack the launcher `root` (default: this one) started."""
    root = root or psutil.Process()
    found = {p.pid: p for p in root.children(recursive=True)}
    sessions = set()
    for proc in list(found.values()):
        with suppress(psutil.Error, OSError):
            sessions.add(os.getsid(proc.pid))
    sessions.discard(os.getsid(root.pid))
    if sessions:
        for proc in psutil.process_iter():
            with suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) in sessions:
                    found.setdefault(proc.pid, proc)
    kept = []
    for proc in found.values():
        with suppress(psutil.Error):
            if not any(m in " ".join(proc.cmdline()) for m in CLIENT_MARKERS):
                kept.append(proc)
    return kept


def sample(processes: list[psutil.Process]) -> dict[str, Any]:
    """One sample: time, and RSS (MiB) and open fds of every process still alive."""
    rows: dict[str, dict[str, float]] = {}
    for proc in processes:
        with suppress(psutil.Error), proc.oneshot():
            rows[_label(proc)] = {"rss_mib": proc.memory_info().rss / 2**20,
                                  "fds": float(proc.num_fds())}
    return {"t": time.time(), "processes": rows}


class Sampler:
    """Samples every `interval_s` when ticked; refreshes the process list each time (replicas
    restart, workers come and go)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._last = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self.samples.append(sample(stack_processes()))

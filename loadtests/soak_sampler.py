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


def label(cmdline: list[str], proc_name: str, pid: int) -> str:
    """A readable name that stays the same for the life of a process: the module or program it
    runs, with the KServe stage it serves (`kserve_impl.server:generator-small[12]`), or the Ray
    actor it hosts without the task it is running now (Ray renames a worker per task:
    `ray::ServeReplica:app:ingress.handle_request` is still the ingress replica)."""
    if "-m" in cmdline[:-1]:
        name = cmdline[cmdline.index("-m") + 1]
    else:
        name = os.path.basename(cmdline[0]) if cmdline else proc_name
    for flag in ("--stage", "--tier"):
        if flag in cmdline[:-1]:
            name += ("-" if flag == "--tier" else ":") + cmdline[cmdline.index(flag) + 1]
    if name.startswith("ray::") or proc_name.startswith("ray::"):
        name = (proc_name if proc_name.startswith("ray::") else name).split(".", 1)[0]
    return f"{name}[{pid}]"


def canonical(name: str) -> str:
    """`label` applied to a name recorded before it dropped the Ray task suffix."""
    if not name.startswith("ray::") or "[" not in name:
        return name
    head, pid = name.rsplit("[", 1)
    return f"{head.split('.', 1)[0]}[{pid}"


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
            rows[label(proc.cmdline(), proc.name(), proc.pid)] = {
                "rss_mib": proc.memory_info().rss / 2**20, "fds": float(proc.num_fds())}
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

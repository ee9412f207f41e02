"""The watchdog: cleans up after a launcher that died, however it died.

`PR_SET_PDEATHSIG` reaches only a launcher's direct children. What they start in turn (vLLM's
engine core, Ray's raylet, GCS and workers under a `ray start` that was itself killed) can
outlive them. So each launcher starts one small child, `python -m shared_pipeline.watchdog`, in
a session of its own, and keeps the write end of a pipe to its stdin. The launcher registers
what to clean up as JSON lines; on EOF, which the kernel delivers when the launcher exits for
any reason (SIGKILL included), the watchdog

1. SIGTERMs every registered process group and every process whose command line contains a
   registered marker (e.g. a Ray cluster's own temp dir), waits a few seconds, SIGKILLs the rest;
2. runs every registered cleanup command (e.g. removing that temp dir);

and exits. A launcher that stopped its children itself `forget`s them first, so a clean exit
leaves the watchdog nothing to do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

GRACE_S = 5.0
COMMAND_TIMEOUT_S = 60.0


# ---------------------------------------------------------------- the launcher's side
class Watchdog:
    """The launcher's handle on its watchdog child: register and forget what to clean up."""

    def __init__(self, log_path: Path | None = None) -> None:
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        # A session of its own: Ctrl-C or a terminal's SIGHUP to the launcher's group must not
        # end the watchdog before the launcher does. No PDEATHSIG: it must outlive us.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared_pipeline.watchdog"], stdin=subprocess.PIPE,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()
        self._lock = threading.Lock()

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()

    def guard_group(self, pgid: int) -> None:
        """Kill process group `pgid` if this launcher dies."""
        self._send({"op": "add", "key": f"pgid:{pgid}", "pgid": pgid})

    def forget_group(self, pgid: int) -> None:
        self._send({"op": "forget", "key": f"pgid:{pgid}"})

    def guard_marker(self, marker: str) -> None:
        """Kill every process whose command line contains `marker` if this launcher dies."""
        self._send({"op": "add", "key": f"marker:{marker}", "marker": marker})

    def forget_marker(self, marker: str) -> None:
        self._send({"op": "forget", "key": f"marker:{marker}"})

    def guard_command(self, key: str, command: list[str]) -> None:
        """Run `command` (after the kills) if this launcher dies."""
        self._send({"op": "add", "key": f"command:{key}", "command": command})

    def forget_command(self, key: str) -> None:
        self._send({"op": "forget", "key": f"command:{key}"})


_WATCHDOG: Watchdog | None = None
_WATCHDOG_PID = 0
_WATCHDOG_LOCK = threading.Lock()


def watchdog() -> Watchdog:
    """This process's watchdog, started on first use (again in a forked child)."""
    global _WATCHDOG, _WATCHDOG_PID
    with _WATCHDOG_LOCK:
        if _WATCHDOG is None or os.getpid() != _WATCHDOG_PID:
            _WATCHDOG, _WATCHDOG_PID = Watchdog(), os.getpid()
        return _WATCHDOG


# ---------------------------------------------------------------- the watchdog itself
def _matching(markers: list[str]) -> list[int]:
    """Pids of this user's processes whose command line contains one of `markers`."""
    import psutil

    me, found = os.getpid(), []
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        info = proc.info
        if info["pid"] == me or not info["cmdline"] or info["uids"] is None:
            continue
        if info["uids"].real == os.getuid() and any(
                m in " ".join(info["cmdline"]) for m in markers):
            found.append(info["pid"])
    return found


def _signal_all(pgids: list[int], markers: list[str], sig: int) -> bool:
    """Send `sig` to every group and marked process; True while any of them is left."""
    alive = False
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    for pid in _matching(markers) if markers else []:
        try:
            os.kill(pid, sig)
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def clean_up(entries: dict[str, dict[str, Any]], grace_s: float = GRACE_S) -> None:
    """Kill the registered groups and marked processes, then run the cleanup commands."""
    pgids = [e["pgid"] for e in entries.values() if "pgid" in e]
    markers = [e["marker"] for e in entries.values() if "marker" in e]
    if _signal_all(pgids, markers, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _signal_all(pgids, markers, 0):
            time.sleep(0.2)
        _signal_all(pgids, markers, signal.SIGKILL)
    for entry in entries.values():
        if "command" in entry:
            try:
                subprocess.run(entry["command"], timeout=COMMAND_TIMEOUT_S, check=False,
                               stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                print(f"watchdog: {entry['command']} failed: {exc}", flush=True)


def main() -> None:
    # Signals aimed at the launcher's terminal must not end us: only EOF does.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    entries: dict[str, dict[str, Any]] = {}
    for line in sys.stdin.buffer:
        with_op = json.loads(line)
        if with_op.pop("op") == "add":
            entries[with_op["key"]] = with_op
        else:
            entries.pop(with_op["key"], None)
    clean_up(entries)


if __name__ == "__main__":
    main()

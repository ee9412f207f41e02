"""One process toolkit for every launcher: ports, child environments, managed children.

A launcher (`twinserve up`, the benchmark, a test) starts servers as children. Three promises
hold for every child started through `ManagedProcess`:
- it runs in a session of its own, so Ctrl-C in the terminal reaches only the launcher, which
  stops the children in order, and its whole process group can be signalled as one;
- it gets `PR_SET_PDEATHSIG` (SIGTERM): when the launcher dies, even by SIGKILL, the kernel
  signals the child. Linux ties this to the *thread* that forked it, so start children from a
  thread that lives as long as they should;
- its process group is registered with the launcher's watchdog (`shared_pipeline.watchdog`),
  which kills what PDEATHSIG cannot reach (grandchildren, daemonised processes) once the
  launcher is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from shared_pipeline.config import Settings
from shared_pipeline.watchdog import watchdog

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
DEATH_SIGNAL = signal.SIGTERM  # graceful: a child that has children of its own stops them
# Resolved in the launcher: the forked child only calls it (no imports or loading after fork).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


class ProcessError(RuntimeError):
    """A child failed to start or died; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def child_env(settings: Settings, path: Path, extra: dict[str, str] | None = None
              ) -> dict[str, str]:
    """A child's environment that reproduces `settings` exactly.

    The settings go to the YAML file `path`, named by `TWINSERVE_CONFIG`; every other
    `TWINSERVE_*` variable of this process is dropped, since it would override the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINSERVE_")}
    env.update(TWINSERVE_CONFIG=str(path), PYTHONUNBUFFERED="1", **(extra or {}))
    return env


def _die_with_parent(parent_pid: int) -> None:
    """preexec_fn: ask for DEATH_SIGNAL when the launcher dies; if it already died, go now."""
    _PRCTL(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the launcher died between fork and prctl
        os.kill(os.getpid(), signal.SIGKILL)


def kill_group(pgid: int, sig: int = signal.SIGTERM) -> bool:
    """Signal process group `pgid`; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


@dataclass(eq=False)  # identity: two children are never "equal"
class ManagedProcess:
    """One child command, its log file, its readiness URL and its process group."""

    name: str
    command: list[str]
    log_path: Path
    ready_url: str | None = None  # GET answers 200 once the child serves
    cwd: Path | None = None
    guard: bool = True  # register the process group with the watchdog
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None
    restarts: int = 0
    _env: dict[str, str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start (or restart, with the last environment) the command in a new session."""
        self._env = env if env is not None else self._env
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        launcher = os.getpid()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self._env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=lambda: _die_with_parent(launcher))
        self.started_at = time.perf_counter()
        self.ready_after_s = None
        if self.guard:
            watchdog().guard_group(self.process.pid)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def failure(self, what: str) -> ProcessError:
        return ProcessError(f"{self.name} {what}; last lines of {self.log_path}:\n"
                            f"{log_tail(self.log_path)}")

    def is_ready(self, client: httpx.Client) -> bool:
        if self.ready_url is None:
            return self.exit_code() is None
        try:
            return client.get(self.ready_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float) -> None:
        wait_all_ready([self], timeout_s)

    def terminate(self) -> None:
        """SIGTERM the whole process group (the child and whatever it started)."""
        if self.process is not None:
            kill_group(self.process.pid, signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait until the child and the rest of its group are gone or `deadline` (monotonic)
        passes, then SIGKILL whatever of the group is left."""
        if self.process is None:
            return
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and kill_group(self.process.pid, 0):
            time.sleep(0.2)  # the group outlives its leader (e.g. Ray's raylet and workers)
        kill_group(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.guard:
            watchdog().forget_group(self.process.pid)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the group, wait up to `grace_s`, then SIGKILL it."""
        self.terminate()
        self.wait_stopped(time.monotonic() + grace_s)


def wait_all_ready(processes: list[ManagedProcess], timeout_s: float,
                   on_ready=None) -> None:
    """Wait until every process answers its readiness URL; raise `ProcessError` with the log
    tail when one exits or `timeout_s` passes. `on_ready(process)` is called as each gets ready."""
    deadline = time.perf_counter() + timeout_s
    waiting = list(processes)
    with httpx.Client() as client:
        while waiting:
            for proc in list(waiting):
                code = proc.exit_code()
                if code is not None:
                    raise proc.failure(f"exited with code {code} while starting")
                if proc.is_ready(client):
                    proc.ready_after_s = time.perf_counter() - proc.started_at
                    waiting.remove(proc)
                    if on_ready:
                        on_ready(proc)
            if waiting and time.perf_counter() > deadline:
                raise waiting[0].failure(f"not ready after {timeout_s:.0f}s")
            time.sleep(0.25)


def stop_all(groups: list[list[ManagedProcess]], grace_s: float = 15.0) -> None:
    """Stop groups of processes in order; the processes of one group stop in parallel."""
    for group in groups:
        for proc in group:
            proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in group:
            proc.wait_stopped(deadline)

"""One local KServe child (a model server or the graph runner) and the kubelet-like supervisor.

`ServerProcess` is the toolkit's `ManagedProcess` with a port: what a pod's container is behind
its Service. `Supervisor` restarts model servers that exit, on the same port, at the kubelet's
CrashLoopBackOff pace (first at once, then after 10 s, 20 s, ... up to 5 min), and records every
exit and restart as an event. It restarts children from its own thread, which lives until the
stack stops, so their parent-death signal stays armed while they run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared_pipeline.processes import LOOPBACK, ManagedProcess, ProcessError

BACKOFF_START_S, BACKOFF_MAX_S = 10.0, 300.0  # the kubelet's restart back-off

StackError = ProcessError  # a server failed to start or died; the message carries its log tail


class ServerProcess(ManagedProcess):
    """A child that serves HTTP on `LOOPBACK:port`; ready when `ready_path` answers 200."""

    def __init__(self, name: str, command: list[str], port: int, ready_path: str,
                 log_path: Path) -> None:
        super().__init__(name, command, log_path,
                         ready_url=f"http://{LOOPBACK}:{port}{ready_path}")
        self.port = port
        self.ready_path = ready_path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class Supervisor:
    """Restart the servers `servers()` returns when they exit, until `stop()`."""

    def __init__(self, servers: Callable[[], list[ServerProcess]]) -> None:
        self.servers = servers
        self.events: list[dict] = []  # exits and restarts, for `twinserve up` and experiments
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kserve-supervisor",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _run(self) -> None:
        due: dict[str, float] = {}  # server name -> when its next restart may happen
        while not self._stopping.wait(0.25):
            for server in list(self.servers()):
                code = server.exit_code()
                if code is None or self._stopping.is_set():
                    continue
                now = time.monotonic()
                if server.name not in due:
                    # The first restart is immediate; each further one waits twice as long.
                    delay = 0.0 if server.restarts == 0 else min(
                        BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (server.restarts - 1))
                    due[server.name] = now + delay
                    self.events.append({"event": "exited", "server": server.name,
                                        "code": code, "at": time.time(), "restart_in_s": delay})
                if now >= due[server.name]:
                    del due[server.name]
                    server.restarts += 1
                    server.start()  # the same command and environment
                    self.events.append({"event": "restarted", "server": server.name,
                                        "restarts": server.restarts, "at": time.time(),
                                        "pid": server.pid})

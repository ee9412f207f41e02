"""The in-process reference server as a benchmark target: started, ready, stopped.

The server itself is `twinserve/inprocess_server.py` (DESIGN: the CLI package holds it); this
launcher starts it by module name (`python -m twinserve.inprocess_server`) as a managed child,
so loadtests depends on it as a process, never as an import.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared_pipeline.config import Settings
from shared_pipeline.processes import LOOPBACK, ManagedProcess, child_env, free_port

SERVER_MODULE = "twinserve.inprocess_server"
STOP_GRACE_S = 20.0  # vLLM's engine core (a child of the server) shuts down within it


@dataclass(frozen=True)
class RunningServer:
    """Where a started reference server answers; the same shape Ray's launcher yields."""

    url: str
    metrics_url: str
    pid: int
    engine: str


@contextmanager
def running_stack(settings: Settings, port: int | None = None, *, engine: str | None = None,
                  log_path: Path | None = None,
                  ready_timeout_s: float = 300.0) -> Iterator[RunningServer]:
    """Start the reference server in a subprocess on `port` (free one if None); yield where."""
    if engine:
        settings = settings.model_copy(
            update={"generate": settings.generate.model_copy(update={"engine": engine})})
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    with tempfile.TemporaryDirectory(prefix="twinserve-inprocess-") as tmp:
        server = ManagedProcess(
            "in-process server",
            [sys.executable, "-m", SERVER_MODULE, "--host", LOOPBACK, "--port", str(port)],
            log_path or Path(tmp) / "server.log", ready_url=f"{url}/v1/models")
        server.start(child_env(settings, Path(tmp) / "settings.yaml"))
        try:
            server.wait_ready(ready_timeout_s)
            yield RunningServer(url=url, metrics_url=f"{url}/metrics", pid=server.pid,
                                engine=settings.generate.engine_for("inprocess"))
        finally:
            server.stop(STOP_GRACE_S)

"""Local mode: every InferenceService of `manifests/kserve/` as a process, and the graph runner.

`up()` is `twinserve up kserve`: it starts one `kserve.ModelServer` process per InferenceService
(the container's command and args, on free loopback ports), waits until each model answers its
readiness endpoint, starts the InferenceGraph runner on `port` (8080 by default, the router's
port), prints the base URL, and stays up until Ctrl-C. A model server that dies is restarted on
the same port, as the kubelet restarts a pod's container behind its Service (first at once,
then after 10 s, 20 s, ... up to 5 min: CrashLoopBackOff's pace), and each restart is logged.
`running_stack()` does the same for tests and benchmarks and yields the base URL; it restarts
servers only with `supervise=True` (experiments), and otherwise fails on the first crash.

Children get the caller's `Settings` exactly: they are written to a YAML file named by
`TWINSERVE_CONFIG`, and other `TWINSERVE_*` variables are not passed on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.markup import escape

from kserve_impl.graph import load_graph
from kserve_impl.manifests import GRAPH_FILE, MANIFEST_DIR, load_services
from shared_pipeline.config import Settings

HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # the InferenceGraph router's port; `twinserve ask --stack kserve` default
READY_TIMEOUT_S = float(os.environ.get("TWINSERVE_KSERVE_READY_TIMEOUT_S", "600"))
STOP_TIMEOUT_S = 15.0
BACKOFF_START_S, BACKOFF_MAX_S = 10.0, 300.0  # the kubelet's restart back-off
# Headers the local router copies to every step (the cluster's router.headers.propagate).
PROPAGATE_HEADERS = ("Authorization", "X-Request-Id")


class StackError(RuntimeError):
    """A server failed to start or died; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServerProcess:
    """One child: a model server or the graph runner."""

    name: str
    command: list[str]
    port: int
    ready_path: str
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, env: dict[str, str]) -> None:
        log = self.log_path.open("ab")
        # A session of its own: Ctrl-C in the terminal reaches only the launcher, which stops
        # the children in order, and each child's process group can be signalled as a whole.
        self.process = subprocess.Popen(self.command, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started_at = time.perf_counter()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def failure(self, what: str) -> StackError:
        return StackError(f"{self.name} {what}; last lines of {self.log_path}:\n"
                          f"{log_tail(self.log_path)}")

    def is_ready(self, client: httpx.Client) -> bool:
        try:
            return client.get(self.url + self.ready_path, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return

    def wait_stopped(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class LocalStack:
    """The processes of one local KServe stack."""

    settings: Settings
    port: int
    manifest_dir: Path = MANIFEST_DIR
    log_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="twinserve-kserve-")))
    servers: list[ServerProcess] = field(default_factory=list)
    graph: ServerProcess | None = None
    events: list[dict] = field(default_factory=list)  # supervisor restarts, for experiments
    _envs: dict[str, dict[str, str]] = field(default_factory=dict)  # server name -> its env
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env_for(self, settings: Settings, name: str = "settings") -> dict[str, str]:
        """A child's environment: `settings` in `<log_dir>/<name>.yaml` via TWINSERVE_CONFIG."""
        config = self.log_dir / f"{name}.yaml"
        config.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWINSERVE_")}
        env.update(TWINSERVE_CONFIG=str(config), PYTHONUNBUFFERED="1")
        return env

    def _env(self) -> dict[str, str]:
        return self.env_for(self.settings)

    def launch(self, server: ServerProcess, env: dict[str, str]) -> None:
        """Start `server` and remember its environment, so the supervisor can restart it."""
        self._envs[server.name] = env
        server.start(env)

    def start(self, on_ready=None) -> None:
        """Start every model server, wait for all, then the graph runner; raise `StackError`."""
        services = load_services(self.manifest_dir)
        graph = load_graph(self.manifest_dir / GRAPH_FILE)
        unknown = graph.service_names() - {s.name for s in services}
        if unknown:
            raise StackError(f"the InferenceGraph names services with no manifest: {unknown}")
        env = self._env()
        for service in services:
            port = free_port()
            server = ServerProcess(service.name, service.local_command(port), port,
                                   service.ready_path(), self.log_dir / f"{service.name}.log")
            self.launch(server, env)
            self.servers.append(server)
        self.wait_ready(self.servers, on_ready)
        command = [sys.executable, "-m", "kserve_impl.graph",
                   "--graph", str(self.manifest_dir / GRAPH_FILE),
                   "--host", HOST, "--port", str(self.port)]
        for service, server in zip(services, self.servers, strict=True):
            command += ["--service", f"{service.name}={server.url}{service.predict_path()}"]
        for pattern in PROPAGATE_HEADERS:
            command += ["--propagate-header", pattern]
        self.graph = ServerProcess("inferencegraph", command, self.port, "/readyz",
                                   self.log_dir / "inferencegraph.log")
        self.graph.start(env)
        self.wait_ready([self.graph], on_ready)

    def wait_ready(self, servers: list[ServerProcess], on_ready=None) -> None:
        deadline = time.perf_counter() + READY_TIMEOUT_S
        waiting = list(servers)
        with httpx.Client() as client:
            while waiting:
                for server in list(waiting):
                    code = server.exit_code()
                    if code is not None:
                        raise server.failure(f"exited with code {code} while starting")
                    if server.is_ready(client):
                        server.ready_after_s = time.perf_counter() - server.started_at
                        waiting.remove(server)
                        if on_ready:
                            on_ready(server)
                if waiting and time.perf_counter() > deadline:
                    raise waiting[0].failure(f"not ready after {READY_TIMEOUT_S:.0f}s")
                time.sleep(0.25)

    # ------------------------------------------------------------ supervision
    def supervise(self) -> None:
        """Restart model servers that exit, from now until `stop()` (a background thread)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="kserve-supervisor",
                                                daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        due: dict[str, float] = {}  # server name -> when its next restart may happen
        while not self._stopping.wait(0.25):
            for server in list(self.servers):
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
                    server.ready_after_s = None
                    server.start(self._envs[server.name])
                    self.events.append({"event": "restarted", "server": server.name,
                                        "restarts": server.restarts, "at": time.time(),
                                        "pid": server.process.pid})

    def all_processes(self) -> list[ServerProcess]:
        return [*self.servers, *([self.graph] if self.graph else [])]

    def crashed(self) -> ServerProcess | None:
        return next((p for p in self.all_processes() if p.exit_code() is not None), None)

    def stop(self) -> None:
        """Stop the graph runner first (no new requests), then the model servers."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for group in ([self.graph] if self.graph else [], self.servers):
            for proc in group:
                proc.stop()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for proc in group:
                proc.wait_stopped(deadline)

    @property
    def server_urls(self) -> dict[str, str]:
        """InferenceService name -> its model server's base URL (`/metrics` lives there)."""
        return {s.name: s.url for s in self.servers}


class StackURL(str):
    """The stack's base URL (a `str`), also carrying each model server's base URL.

    `running_stack` yields it so a test or benchmark can read every server's `/metrics`:
    `url.servers["generator-small"] + "/metrics"`.
    """

    servers: dict[str, str]
    log_dir: Path
    local: LocalStack  # the processes themselves (experiments roll, kill and count them)

    def __new__(cls, url: str, servers: dict[str, str], log_dir: Path,
                local: LocalStack | None = None) -> StackURL:
        obj = super().__new__(cls, url)
        obj.servers = servers
        obj.log_dir = log_dir
        obj.local = local
        return obj


@contextmanager
def running_stack(settings: Settings, port: int | None = None,
                  manifest_dir: Path = MANIFEST_DIR,
                  log_dir: Path | None = None, supervise: bool = False) -> Iterator[StackURL]:
    """The whole KServe stack, started and ready; stopped when the block ends.

    Args:
        settings: what every server runs with.
        port: the graph runner's port (default: a free one).
        manifest_dir: where the InferenceServices and the InferenceGraph are.
        log_dir: where each process logs (default: a new temporary folder).
        supervise: restart model servers that exit (as the kubelet does) instead of failing.

    Yields:
        the graph runner's base URL (`StackURL`, use `<url>/v1` as the OpenAI base URL).
    """
    stack = LocalStack(settings, port or free_port(), manifest_dir)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        stack.log_dir = log_dir
    try:
        stack.start()
        if supervise:
            stack.supervise()
        yield StackURL(stack.url, stack.server_urls, stack.log_dir, stack)
        crashed = stack.crashed()
        if crashed is not None and not supervise:
            raise crashed.failure(f"exited with code {crashed.exit_code()} while serving")
    finally:
        stack.stop()


def up(settings: Settings, port: int | None = None, console: Console | None = None) -> None:
    """`twinserve up kserve`: start the stack, print its URL, serve until Ctrl-C or a crash."""
    console = console or Console()
    stack = LocalStack(settings, port or DEFAULT_PORT)
    started = time.perf_counter()
    console.print(f"starting the KServe stack from {stack.manifest_dir} (logs: {stack.log_dir})")

    def on_ready(server: ServerProcess) -> None:
        console.print(f"  [green]ready[/] {server.name:<16} {server.url}  "
                      f"({server.ready_after_s:.1f}s)")

    try:
        stack.start(on_ready)
        stack.supervise()
        console.print(f"\n[bold]KServe stack ready[/] in {time.perf_counter() - started:.1f}s: "
                      f"{stack.url}  (OpenAI base URL {stack.url}/v1)\n"
                      f"  twinserve ask --stack kserve --url {stack.url} \"What does yield do?\"\n"
                      "Ctrl-C stops everything.")
        reported = 0
        while stack.graph.exit_code() is None:
            new = stack.events[reported:]
            reported += len(new)
            for event in new:
                console.print(f"  [yellow]{event['server']} {event['event']}[/] "
                              + (f"(exit code {event['code']}; restarting in "
                                 f"{event['restart_in_s']:.0f}s)" if event["event"] == "exited"
                                 else f"(restart {event['restarts']})"))
            time.sleep(0.5)
        raise stack.graph.failure(f"exited with code {stack.graph.exit_code()} while serving")
    except KeyboardInterrupt:
        console.print("\nstopping the KServe stack ...")
    except StackError as exc:
        console.print(f"[red]KServe stack failed:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    finally:
        stack.stop()
    console.print("stopped.")

"""Local mode: every InferenceService of `manifests/kserve/` as a process, and the graph runner.

`running_stack()` starts one `kserve.ModelServer` process per InferenceService (the container's
command and args, on free loopback ports, bound to 127.0.0.1 with `--http_host`), waits until
each model answers its readiness endpoint, starts the InferenceGraph runner, and yields the base
URL; it restarts servers only with `supervise=True` (experiments), and otherwise fails on the
first crash. `twinserve up kserve` is `kserve_impl.up`.

Two topologies read the same stage manifests: `graph` (default) puts the InferenceGraph runner in
front; `orchestrated` runs `orchestrated/pipeline.yaml`'s container command instead, the entry
InferenceService that calls the stage servers itself (`kserve_impl.orchestrator`), with their
local `:predict` URLs in its `TWINSERVE_STAGE_URL_*` environment.

Children get the caller's `Settings` exactly (`shared_pipeline.processes.child_env`), and every
child is a `ManagedProcess`: its own session, a parent-death signal, the launcher's watchdog.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kserve_impl.graph import load_graph
from kserve_impl.manifests import (
    GRAPH_FILE,
    MANIFEST_DIR,
    ORCHESTRATED_DIR,
    ServiceManifest,
    load_services,
    stage_url_env,
)
from kserve_impl.server_process import ServerProcess, StackError, Supervisor
from shared_pipeline.config import Settings
from shared_pipeline.engines.cpu_placement import tier_placement_envs
from shared_pipeline.processes import LOOPBACK, child_env, free_port, stop_all, wait_all_ready

__all__ = ["LocalStack", "ServerProcess", "StackError", "StackURL", "running_stack"]

HOST = LOOPBACK
DEFAULT_PORT = 8080  # the InferenceGraph router's port; `twinserve ask --stack kserve` default
READY_TIMEOUT_S = float(os.environ.get("TWINSERVE_KSERVE_READY_TIMEOUT_S", "600"))
STOP_TIMEOUT_S = 15.0
# Headers the local router copies to every step (the cluster's router.headers.propagate).
PROPAGATE_HEADERS = ("Authorization", "X-Request-Id")
TOPOLOGIES = ("graph", "orchestrated")


@dataclass
class LocalStack:
    """The processes of one local KServe stack."""

    settings: Settings
    port: int
    manifest_dir: Path = MANIFEST_DIR
    log_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="twinserve-kserve-")))
    topology: str = "graph"
    servers: list[ServerProcess] = field(default_factory=list)
    graph: ServerProcess | None = None  # the entry: the graph runner, or the orchestrator
    supervisor: Supervisor | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def events(self) -> list[dict]:
        """Supervisor exits and restarts, for `twinserve up` and experiments."""
        return self.supervisor.events if self.supervisor else []

    def env_for(self, settings: Settings, name: str = "settings") -> dict[str, str]:
        """A child's environment: `settings` in `<log_dir>/<name>.yaml` via TWINSERVE_CONFIG."""
        return child_env(settings, self.log_dir / f"{name}.yaml")

    def model_server(self, service: ServiceManifest, name: str | None = None) -> ServerProcess:
        """The InferenceService's container command as a loopback-only local process."""
        name = name or service.name
        port = free_port()
        command = [*service.local_command(port), "--http_host", HOST]
        return ServerProcess(name, command, port, service.ready_path(),
                             self.log_dir / f"{name}.log")

    def placement_env(self, service: ServiceManifest) -> dict[str, str]:
        """One host runs both generators here: the large tier's vLLM engine gets its own core
        (shared_pipeline.engines.cpu_placement; the transformers engine is not pinned)."""
        return tier_placement_envs(self.settings.generate, "kserve").get(service.tier, {})

    def launch(self, server: ServerProcess, env: dict[str, str]) -> None:
        """Start `server` with `env` (kept: a supervisor restart reuses it)."""
        server.start(env)

    def start(self, on_ready=None) -> None:
        """Start every model server, wait for all, then the entry; raise `StackError`."""
        if self.topology not in TOPOLOGIES:
            raise StackError(f"unknown topology {self.topology!r}; known: {TOPOLOGIES}")
        services = load_services(self.manifest_dir)
        graph = load_graph(self.manifest_dir / GRAPH_FILE)
        unknown = graph.service_names() - {s.name for s in services}
        if unknown:
            raise StackError(f"the InferenceGraph names services with no manifest: {unknown}")
        env = self.env_for(self.settings)
        for service in services:
            server = self.model_server(service)
            self.launch(server, {**env, **self.placement_env(service)})
            self.servers.append(server)
        self.wait_ready(self.servers, on_ready)
        urls = {s.name: f"{server.url}{s.predict_path()}"
                for s, server in zip(services, self.servers, strict=True)}
        if self.topology == "orchestrated":
            self.graph = self._orchestrator(urls)
            env = {**env, **{stage_url_env(name): url for name, url in urls.items()}}
        else:
            self.graph = self._graph_runner(urls)
        self.graph.start(env)
        self.wait_ready([self.graph], on_ready)

    def _graph_runner(self, urls: dict[str, str]) -> ServerProcess:
        command = [sys.executable, "-m", "kserve_impl.graph",
                   "--graph", str(self.manifest_dir / GRAPH_FILE),
                   "--host", HOST, "--port", str(self.port)]
        for name, url in urls.items():
            command += ["--service", f"{name}={url}"]
        for pattern in PROPAGATE_HEADERS:
            command += ["--propagate-header", pattern]
        return ServerProcess("inferencegraph", command, self.port, "/readyz",
                             self.log_dir / "inferencegraph.log")

    def _orchestrator(self, urls: dict[str, str]) -> ServerProcess:
        entries = load_services(self.manifest_dir / ORCHESTRATED_DIR)
        if len(entries) != 1:
            raise StackError(f"{ORCHESTRATED_DIR}/ must hold one entry InferenceService")
        entry = entries[0]
        # the local rollout sets the entry's canary split, as it sets the graph runner's
        command = [*entry.local_command(self.port), "--http_host", HOST, "--local_traffic_split"]
        return ServerProcess(entry.name, command, self.port, entry.ready_path(),
                             self.log_dir / f"{entry.name}.log")

    def wait_ready(self, servers: list[ServerProcess], on_ready=None) -> None:
        wait_all_ready(servers, READY_TIMEOUT_S, on_ready)

    def supervise(self) -> None:
        """Restart model servers that exit, from now until `stop()` (a background thread)."""
        if self.supervisor is None:
            self.supervisor = Supervisor(lambda: self.servers)
            self.supervisor.start()

    def all_processes(self) -> list[ServerProcess]:
        return [*self.servers, *([self.graph] if self.graph else [])]

    def crashed(self) -> ServerProcess | None:
        return next((p for p in self.all_processes() if p.exit_code() is not None), None)

    def stop(self) -> None:
        """Stop the graph runner first (no new requests), then the model servers."""
        if self.supervisor is not None:
            self.supervisor.stop()
        stop_all([[self.graph] if self.graph else [], self.servers], STOP_TIMEOUT_S)

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
                  log_dir: Path | None = None, supervise: bool = False,
                  topology: str = "graph") -> Iterator[StackURL]:
    """The whole KServe stack, started and ready; stopped when the block ends.

    Args:
        settings: what every server runs with.
        port: the graph runner's port (default: a free one).
        manifest_dir: where the InferenceServices and the InferenceGraph are.
        log_dir: where each process logs (default: a new temporary folder).
        supervise: restart model servers that exit (as the kubelet does) instead of failing.
        topology: `graph` (the InferenceGraph runner in front) or `orchestrated` (the entry
            InferenceService that streams).

    Yields:
        the entry's base URL (`StackURL`, use `<url>/v1` as the OpenAI base URL).
    """
    stack = LocalStack(settings, port or free_port(), manifest_dir, topology=topology)
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

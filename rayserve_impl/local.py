"""Local mode: a real single-node Ray cluster on loopback, the Serve config deployed onto it.

`running_stack(settings)` is what tests and the benchmark use; `up(...)` is `twinserve up
rayserve`. Both do what a cluster does, on one machine: `ray start --head` (its own temp dir, so
runs never share session files; fixed, free ports, the Prometheus endpoint among them), then the
equivalent of `serve deploy` (PUT of the config to the dashboard's `/api/serve/applications/`),
then wait until the application is RUNNING with every deployment HEALTHY. Teardown deletes the
Serve application first (replicas drain and stop their vLLM engines), then ends the Ray
processes this module started, by their process group, and removes the temp dir.

Each cluster gets its own Ray auth token (`RAY_AUTH_MODE=token`): Ray 2.60 turns token auth on
by itself once `~/.ray/auth_token` exists, so being explicit keeps the dashboard calls working
whatever that file says, and nothing else on the host can drive this cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rayserve_impl.serve_config import APP_NAME, local_config
from shared_pipeline.config import Settings

DEFAULT_PORT = 8000
NUM_CPUS = 2  # a laptop / CI box; every deployment's num_cpus is sized to fit in it
READY_TIMEOUT_S = 600.0  # two vLLM engines start in ~35 s each on 2 cores; builds add more


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Dashboard:
    """The Ray dashboard's Serve REST API: what `serve deploy` and `serve status` call."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def deploy(self, config: dict[str, Any]) -> None:
        """`serve deploy`: PUT the whole config (idempotent; in place where the change
        allows it, e.g. `user_config`)."""
        response = httpx.put(f"{self.url}/api/serve/applications/", json=config,
                             headers=self.headers, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"serve deploy refused ({response.status_code}): "
                               f"{response.text}")

    def delete(self) -> None:
        """`serve shutdown`: delete every application (replicas shut down gracefully)."""
        httpx.delete(f"{self.url}/api/serve/applications/", headers=self.headers, timeout=60)

    def status(self) -> dict[str, Any]:
        """`serve status` as JSON: applications, their deployments and replicas."""
        response = httpx.get(f"{self.url}/api/serve/applications/", headers=self.headers,
                             timeout=10)
        response.raise_for_status()
        return response.json()

    def app_status(self) -> tuple[str, dict[str, str], str]:
        """(application status, {deployment: status}, message) of the twinserve app."""
        app = (self.status().get("applications") or {}).get(APP_NAME) or {}
        deployments = {name: d.get("status", "") for name, d in
                       (app.get("deployments") or {}).items()}
        return app.get("status", "NOT_STARTED"), deployments, app.get("message", "")

    def is_healthy(self, config: dict[str, Any]) -> bool:
        """RUNNING, with every deployment `config` names present and HEALTHY."""
        status, deployments, _ = self.app_status()
        expected = {d["name"] for d in config["applications"][0]["deployments"]}
        return (status == "RUNNING" and set(deployments) >= expected
                and all(s == "HEALTHY" for s in deployments.values()))


@dataclass
class RunningStack:
    """A running local Ray stack: where to send requests and where to scrape metrics.

    `url` is the OpenAI base URL without `/v1` (also what `str()` gives); `metrics_url` is
    Ray's Prometheus endpoint (the head's `--metrics-export-port`), where the pipeline metrics
    appear as `ray_pipeline_*`. `ray_env` is what a driver needs to join the cluster
    (`RAY_ADDRESS` and the auth token), e.g. to call a deployment through its handle.
    """

    url: str
    metrics_url: str
    dashboard: Dashboard
    ray_env: dict[str, str]
    temp_dir: Path
    config: dict[str, Any] = field(repr=False)
    startup_s: float = 0.0

    def __str__(self) -> str:
        return self.url


class LocalRayCluster:
    """One `ray start --head --block` process group and the Serve app deployed on it."""

    def __init__(self, settings: Settings, port: int | None = None, *,
                 overrides: dict[str, dict[str, Any]] | None = None,
                 num_cpus: int = NUM_CPUS) -> None:
        self.port = port or DEFAULT_PORT
        self.config = local_config(settings, self.port, overrides=overrides)
        self.num_cpus = num_cpus
        self.ports = {name: free_port() for name in (
            "gcs", "dashboard", "metrics", "agent_http", "agent_grpc", "runtime_env", "client",
            "node_manager", "object_manager")}
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tsray-"))  # short: socket paths are capped
        self.dashboard = Dashboard(f"http://127.0.0.1:{self.ports['dashboard']}",
                                   secrets.token_hex(32))
        self.metrics_url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        self.url = f"http://127.0.0.1:{self.port}"
        self.ray_env = {"RAY_ADDRESS": f"127.0.0.1:{self.ports['gcs']}",
                        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.dashboard.token}
        self._process: subprocess.Popen | None = None

    # ------------------------------------------------------------------ start
    def start_ray(self) -> None:
        ray_cli = Path(sys.executable).with_name("ray")
        p = self.ports
        command = [
            str(ray_cli) if ray_cli.exists() else "ray", "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1", "--port", str(p["gcs"]),
            "--num-cpus", str(self.num_cpus), "--num-gpus", "0",
            "--object-store-memory", str(300 * 1024 * 1024),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(p["dashboard"]), "--metrics-export-port", str(p["metrics"]),
            "--dashboard-agent-listen-port", str(p["agent_http"]),
            "--dashboard-agent-grpc-port", str(p["agent_grpc"]),
            "--runtime-env-agent-port", str(p["runtime_env"]),
            "--ray-client-server-port", str(p["client"]),
            "--node-manager-port", str(p["node_manager"]),
            "--object-manager-port", str(p["object_manager"]),
            "--temp-dir", str(self.temp_dir), "--disable-usage-stats",
        ]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               **self.ray_env}
        env.pop("RAY_ADDRESS")  # `ray start --head` makes the cluster; it joins none
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        log = (self.temp_dir / "ray-start.log").open("wb")
        # A new session: Ctrl-C in the terminal reaches us, not Ray, and teardown can signal
        # every process Ray started (raylet, GCS, workers, vLLM engine cores) as one group.
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

        def dashboard_up() -> bool:
            self._check_alive()
            response = httpx.get(f"{self.dashboard.url}/api/version",
                                 headers=self.dashboard.headers, timeout=2)
            return response.status_code == 200

        self._wait(dashboard_up, 180, "the Ray dashboard")

    def deploy(self) -> None:
        self.dashboard.deploy(self.config)

    def wait_healthy(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        def ready() -> bool:
            self._check_alive()
            status, _, message = self.dashboard.app_status()
            if status == "DEPLOY_FAILED":
                raise RuntimeError(f"Serve application failed to deploy: {message}")
            return self.dashboard.is_healthy(self.config) and httpx.get(
                f"{self.url}/v1/models", timeout=5).status_code == 200

        self._wait(ready, timeout_s, "every deployment HEALTHY")

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"`ray start` exited with {self._process.returncode}:\n"
                               f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of `ray start`'s output and of the dashboard's log, for error messages."""
        parts = []
        for path in [self.temp_dir / "ray-start.log",
                     *sorted(self.temp_dir.glob("session_latest/logs/dashboard.log"))]:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def _wait(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}\n"
                           f"{self.log_tail()}")

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Delete the Serve app (graceful replica shutdown), then end Ray's process group."""
        if self._process is not None and self._process.poll() is None:
            try:
                self.dashboard.delete()
                self._wait(lambda: not self.dashboard.status().get("applications"), 60,
                           "the Serve application to shut down")
            except (httpx.HTTPError, TimeoutError):
                pass  # Ray is going down anyway
        self._kill_group()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_group(self) -> None:
        if self._process is None:
            return
        pgid = self._process.pid  # the session leader: its pid is the group id
        for sig, grace_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.2)
            if not _group_alive(pgid):
                break
        self._process.wait(timeout=10)
        self._process = None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_stack(settings: Settings, port: int | None = None, *,
                  overrides: dict[str, dict[str, Any]] | None = None,
                  ready_timeout_s: float = READY_TIMEOUT_S) -> Iterator[RunningStack]:
    """Start Ray, deploy the Serve config, yield a `RunningStack` once HEALTHY; tear all down.

    Args:
        settings: the pipeline settings every deployment is built with.
        port: the HTTP port of Serve's proxy (default: a free one).
        overrides: per-deployment Serve options merged into the config, by deployment name.
    """
    started = time.perf_counter()
    cluster = LocalRayCluster(settings, port or free_port(), overrides=overrides)
    try:
        cluster.start_ray()
        cluster.deploy()
        cluster.wait_healthy(ready_timeout_s)
        yield RunningStack(url=cluster.url, metrics_url=cluster.metrics_url,
                           dashboard=cluster.dashboard, ray_env=dict(cluster.ray_env),
                           temp_dir=cluster.temp_dir, config=cluster.config,
                           startup_s=time.perf_counter() - started)
    finally:
        cluster.stop()


def up(settings: Settings, port: int | None = None, console=None) -> None:
    """`twinserve up rayserve`: start, print the base URL, serve until Ctrl-C, stop cleanly."""
    from rich.console import Console

    console = console or Console()
    port = port or DEFAULT_PORT

    def on_term(signum, frame):  # a `kill` ends the stack as cleanly as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with console.status("starting Ray and deploying the Serve config "
                            "(two vLLM engines: about a minute and a half on CPU)"):
            stack_cm = running_stack(settings, port)
            stack = stack_cm.__enter__()
        try:
            console.print(f"[green]Ray Serve stack ready[/] in {stack.startup_s:.0f}s: "
                          f"{stack.url}  (OpenAI API at {stack.url}/v1)")
            console.print(f"metrics: {stack.metrics_url}   dashboard: {stack.dashboard.url}")
            console.print("Ctrl-C stops Serve and Ray.")
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping Serve and Ray ...")
        finally:
            stack_cm.__exit__(None, None, None)
            console.print("stopped.")
    finally:
        signal.signal(signal.SIGTERM, previous)

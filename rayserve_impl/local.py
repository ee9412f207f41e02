"""Local mode: a real single-node Ray cluster on loopback, the Serve config deployed onto it.

`running_stack(settings)` is what tests and the benchmark use, and `rayserve_impl.up` is
`twinserve up rayserve`. Both do what a cluster does, on one machine: `ray start --head` (its own
temp dir, so runs never share session files; fixed, free ports, the Prometheus endpoint among
them, every one on loopback), then the
equivalent of `serve deploy` (PUT of the config to the dashboard's `/api/serve/applications/`),
then wait until the application is RUNNING with every deployment HEALTHY. Teardown (also on
SIGTERM / SIGHUP, within the 30 s a supervisor allows) deletes the Serve application first
(replicas drain and stop their vLLM engines), then ends the Ray processes this cluster started,
by their process group and by its temp dir in their command lines, and removes the temp dir.

Loopback only: Ray on Linux turns `--node-ip-address 127.0.0.1` into the machine's routable
address (`services.resolve_ip_for_localhost`), so GCS, raylet, the dashboard agent, the monitor
and the client server would listen on it. `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` selects Ray's
single-node mode (its default on macOS and Windows): the node IP stays 127.0.0.1, and no other
node can join, which is what local mode is.

Each cluster gets its own Ray auth token (`RAY_AUTH_MODE=token`): Ray 2.60 turns token auth on
by itself once `~/.ray/auth_token` exists, so being explicit keeps the dashboard calls working
whatever that file says, and nothing else on the host can drive this cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rayserve_impl.dashboard import Dashboard
from rayserve_impl.proxy_limits import CALLBACK as PROXY_LIMITS
from rayserve_impl.serve_config import local_config
from shared_pipeline.config import Settings
from shared_pipeline.processes import LOOPBACK, ManagedProcess, free_port
from shared_pipeline.watchdog import clean_up, watchdog

__all__ = ["Dashboard", "LocalRayCluster", "RunningStack", "running_stack"]

DEFAULT_PORT = 8000
NUM_CPUS = 2  # a laptop / CI box; every deployment's num_cpus is sized to fit in it
READY_TIMEOUT_S = 600.0  # two vLLM engines start in ~35 s each on 2 cores; builds add more
# Stopping fits in the 30 s a supervisor (systemd, docker stop) gives before its SIGKILL:
# replicas drain and stop their engines (at most APP_SHUTDOWN_S), then Ray's processes get
# SIGTERM and, RAY_STOP_GRACE_S later, SIGKILL.
APP_SHUTDOWN_S, RAY_STOP_GRACE_S = 12.0, 10.0
# Ray's single-node mode (see the module docstring) and no second drain on SIGTERM: `ray start`
# would otherwise wait up to 30 s for a node drain after we have already drained Serve.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                 "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
# Ray Serve's throughput mode in Ray's processes (handles by value over gRPC, user code and
# routers on the replica's own loop): on 2 cores the c1 hops fell from 113.9 to 73.8 ms (mean
# total), c4 went 0.65 -> 0.74 req/s (docs/results/ray-throughput-2026-12-02). Its direct ingress
# stays off: an extra listener per ingress replica and a 30 s drain, for nothing behind a proxy.
# Drivers (`ray_env`) keep Ray's defaults: a sync `handle.remote().result()` needs the router's
# own loop. The caller's environment wins (RAY_SERVE_THROUGHPUT_OPTIMIZED=0 turns it off).
LOCAL_SERVE_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}


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
        self.dashboard = Dashboard(f"http://{LOOPBACK}:{self.ports['dashboard']}",
                                   secrets.token_hex(32))
        self.metrics_url = f"http://{LOOPBACK}:{self.ports['metrics']}/metrics"
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.ray_env = {"RAY_ADDRESS": f"{LOOPBACK}:{self.ports['gcs']}",
                        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.dashboard.token,
                        **LOCAL_RAY_ENV}
        self._process: ManagedProcess | None = None

    # ------------------------------------------------------------------ start
    def start_ray(self) -> None:
        ray_cli = Path(sys.executable).with_name("ray")
        p = self.ports
        command = [
            str(ray_cli) if ray_cli.exists() else "ray", "start", "--head", "--block",
            "--node-ip-address", LOOPBACK, "--port", str(p["gcs"]),
            "--num-cpus", str(self.num_cpus), "--num-gpus", "0",
            "--object-store-memory", str(300 * 1024 * 1024),
            "--include-dashboard", "true", "--dashboard-host", LOOPBACK,
            "--dashboard-port", str(p["dashboard"]), "--metrics-export-port", str(p["metrics"]),
            "--dashboard-agent-listen-port", str(p["agent_http"]),
            "--dashboard-agent-grpc-port", str(p["agent_grpc"]),
            "--runtime-env-agent-port", str(p["runtime_env"]),
            "--ray-client-server-port", str(p["client"]),
            "--node-manager-port", str(p["node_manager"]),
            "--object-manager-port", str(p["object_manager"]),
            "--temp-dir", str(self.temp_dir), "--disable-usage-stats",
        ]
        env = {**LOCAL_SERVE_ENV, **os.environ,  # the caller's env may turn throughput mode off
               "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": PROXY_LIMITS,  # limits in the proxy
               **self.ray_env}
        env.pop("RAY_ADDRESS")  # `ray start --head` makes the cluster; it joins none
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        # A managed child: its own session (Ctrl-C reaches us, not Ray; teardown signals every
        # process Ray starts, raylet, GCS, workers, vLLM engine cores, as one group), a
        # parent-death signal (`ray start --block` then stops Ray itself), and the watchdog:
        # if we die, it kills the group and every process naming this cluster's temp dir, and
        # removes the dir.
        self._process = ManagedProcess("ray start", command, self.temp_dir / "ray-start.log")
        watchdog().guard_marker(str(self.temp_dir))
        watchdog().guard_command(str(self.temp_dir), ["rm", "-rf", str(self.temp_dir)])
        self._process.start(env)

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
        if self._process is not None and self._process.exit_code() is not None:
            raise RuntimeError(f"`ray start` exited with {self._process.exit_code()}:\n"
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
        """Drain the Serve app, then end every Ray process of this cluster, in bounded time.

        The app delete lets replicas finish requests and stop their vLLM engines. Then Ray's
        process group and every process naming this cluster's temp dir (a Ray process that left
        the group) get SIGTERM, and SIGKILL after `RAY_STOP_GRACE_S`. Other Ray clusters on the
        host are left alone, which `ray stop` would not do.
        """
        if self._process is not None and self._process.exit_code() is None:
            self._drain_serve(time.monotonic() + APP_SHUTDOWN_S)
        if self._process is not None:
            clean_up({"group": {"pgid": self._process.pid},
                      "marker": {"marker": str(self.temp_dir)}}, grace_s=RAY_STOP_GRACE_S)
            self._process.wait_stopped(time.monotonic() + 1)  # reap `ray start`, unguard it
            self._process = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        watchdog().forget_marker(str(self.temp_dir))
        watchdog().forget_command(str(self.temp_dir))

    def _drain_serve(self, deadline: float) -> None:
        """`serve shutdown` and wait for it until `deadline`; Ray goes down after it anyway."""
        try:
            self.dashboard.delete(timeout_s=max(1.0, deadline - time.monotonic()))
            while time.monotonic() < deadline:
                if not self.dashboard.status().get("applications"):
                    return
                time.sleep(0.5)
        except httpx.HTTPError:
            pass


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

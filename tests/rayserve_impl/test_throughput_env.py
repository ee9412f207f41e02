"""Ray Serve's throughput mode: the local Ray processes and every RayService container run it,
drivers joining the local cluster do not, and the caller's environment can switch it off.

Nothing here starts Ray: `ray start` is replaced by a recorder of the environment it would get.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import yaml

from rayserve_impl import local
from rayserve_impl.serve_config import RAYSERVICE_PATH
from shared_pipeline.config import Settings


class Started(Exception):
    """Raised by the fake `ray start` once it has the environment."""


def ray_start_env(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], dict[str, str]]:
    """The environment `LocalRayCluster.start_ray` gives `ray start`, and the drivers' one."""
    seen: dict[str, str] = {}

    class FakeProcess:
        def __init__(self, *args: Any) -> None:
            pass

        def start(self, env: dict[str, str]) -> None:
            seen.update(env)
            raise Started

    class NoWatchdog:
        def __getattr__(self, name: str) -> Any:
            return lambda *args: None

    monkeypatch.setattr(local, "ManagedProcess", FakeProcess)
    monkeypatch.setattr(local, "watchdog", NoWatchdog)
    cluster = local.LocalRayCluster(Settings(), 8000)
    try:
        with pytest.raises(Started):
            cluster.start_ray()
    finally:
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    return seen, cluster.ray_env


def test_ray_processes_run_throughput_mode_and_drivers_do_not(monkeypatch) -> None:
    for key in local.LOCAL_SERVE_ENV:
        monkeypatch.delenv(key, raising=False)
    ray_start, driver = ray_start_env(monkeypatch)
    assert ray_start["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert ray_start["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0"
    # a driver's `handle.remote(...).result()` needs the router on its own loop (Ray's default)
    assert not set(local.LOCAL_SERVE_ENV) & set(driver)


def test_the_callers_environment_switches_it_off(monkeypatch) -> None:
    monkeypatch.setenv("RAY_SERVE_THROUGHPUT_OPTIMIZED", "0")
    ray_start, _ = ray_start_env(monkeypatch)
    assert ray_start["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "0"


def test_every_rayservice_container_runs_the_local_mode() -> None:
    cluster = yaml.safe_load(RAYSERVICE_PATH.read_text())["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    containers = [c for g in groups for c in g["template"]["spec"]["containers"]]
    assert len(containers) == 4
    for container in containers:
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert {k: env.get(k) for k in local.LOCAL_SERVE_ENV} == local.LOCAL_SERVE_ENV, \
            container["name"]

"""rayserve_impl.rollout without Ray: the configs it deploys, how it reads Serve's status, kill.

Status dicts are built with Ray 2.60's own models (`ray.serve.schema.ServeInstanceDetails`) and
dumped as the dashboard's `GET /api/serve/applications/` dumps them, so a shape change in Ray
fails here. The rollout/rollback flow runs against `FakeDashboard`, a test double for Serve's
controller (starting Ray takes minutes on 2 cores; the real stack is checked by hand, see the
module report): it answers DEPLOYING first, then RUNNING with the deployed config. `kill` runs
for real on a process tree started here.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from ray.serve.schema import (
    ApplicationDetails,
    DeploymentDetails,
    DeploymentSchema,
    ReplicaDetails,
    ServeActorDetails,
    ServeInstanceDetails,
)

from rayserve_impl import rollout
from rayserve_impl.dashboard import Dashboard
from rayserve_impl.local import RunningStack
from rayserve_impl.rollout import (
    RayControl,
    app_config,
    inplace_config,
    pending,
    pick_replica,
    process_alive,
    replica_ids,
    restart_config,
    running_replicas,
)
from rayserve_impl.serve_config import APP_NAME, local_config
from shared_pipeline.config import Settings
from shared_pipeline.revision import RevisionChange, revision_of

CHANGE = RevisionChange(revision_name="b", fail_ratio=0.0, max_answer_chars=300)


def serve_status(deployments: dict[str, dict[str, Any]], *, app_status: str = "RUNNING",
                 deployed_at: float = 100.0, message: str = "") -> dict[str, Any]:
    """A status as Ray 2.60 returns it. `deployments`: name -> {status, user_config,
    replicas: [(replica_id, state, pid)]}."""
    details = {
        name: DeploymentDetails(
            name=name, status=d.get("status", "HEALTHY"),
            status_trigger="CONFIG_UPDATE_COMPLETED", message="",
            deployment_config=DeploymentSchema(name=name, user_config=d.get("user_config")),
            target_num_replicas=len(d["replicas"]), required_resources={"CPU": 0.1},
            replicas=[ReplicaDetails(replica_id=rid, state=state, pid=pid,
                                     actor_id=f"actor-{rid}", start_time_s=1.0)
                      for rid, state, pid in d["replicas"]])
        for name, d in deployments.items()}
    app = ApplicationDetails(name=APP_NAME, route_prefix="/", docs_path=None, status=app_status,
                             message=message, last_deployed_time_s=deployed_at,
                             source="declarative", deployments=details,
                             external_scaler_enabled=False)
    instance = ServeInstanceDetails(proxies={}, applications={APP_NAME: app},
                                    controller_info=ServeActorDetails())
    return instance._get_user_facing_json_serializable_dict(exclude_unset=True)


@pytest.fixture
def config(settings: Settings) -> dict[str, Any]:
    return local_config(settings, 8123)


def names(config: dict[str, Any]) -> list[str]:
    return [d["name"] for d in app_config(config)["deployments"]]


def without(config: dict[str, Any], *, user_config: bool = False,
            args: bool = False) -> dict[str, Any]:
    """`config` with the deployments' user_config and/or the app args removed."""
    config = copy.deepcopy(config)
    app = app_config(config)
    if args:
        app.pop("args")
    if user_config:
        for d in app["deployments"]:
            d.pop("user_config", None)
    return config


# ------------------------------------------------------------------ configs
def test_inplace_config_sets_only_user_config_on_every_deployment(config) -> None:
    original = copy.deepcopy(config)
    new = inplace_config(config, CHANGE)
    assert config == original  # never mutated
    for d in app_config(new)["deployments"]:
        assert d["user_config"] == {"revision_name": "b", "fail_ratio": 0.0,
                                    "max_answer_chars": 300}
    assert "ingress" in names(new)  # the ingress reports the revision, so it changes too
    assert without(new, user_config=True) == without(config, user_config=True)
    # Each deployment owns its copy: editing one does not edit the others.
    first, second = app_config(new)["deployments"][:2]
    first["user_config"]["revision_name"] = "x"
    assert second["user_config"]["revision_name"] == "b"


def test_restart_config_changes_only_the_app_args(config, settings) -> None:
    original = copy.deepcopy(config)
    changed = CHANGE.apply(settings)
    new = restart_config(config, changed)
    assert config == original
    assert app_config(new)["args"]["settings"] == changed.model_dump(mode="json")
    assert app_config(new)["args"]["settings"] != app_config(config)["args"]["settings"]
    assert without(new, args=True) == without(config, args=True)
    assert rollout.restarts_replicas(config, new)
    assert not rollout.restarts_replicas(config, inplace_config(config, CHANGE))


def test_the_manifest_default_user_config_is_empty_everywhere(config) -> None:
    """What rollback restores: the YAML anchor's `{}`, kept as it is, not dropped."""
    assert {d["name"]: d["user_config"] for d in app_config(config)["deployments"]} == {
        name: {} for name in names(config)}


# ------------------------------------------------------------------ reading the status
def healthy(config: dict[str, Any], *, user_config: Any = None, prefix: str = "r",
            **status: Any) -> dict[str, Any]:
    return serve_status({
        name: {"user_config": {} if user_config is None else user_config,
               "replicas": [(f"{prefix}-{name}", "RUNNING", 1000 + i)]}
        for i, name in enumerate(names(config))}, **status)


def test_replicas_and_ids_from_the_status(config) -> None:
    status = healthy(config)
    status["applications"][APP_NAME]["deployments"]["router"]["replicas"].append(
        {"replica_id": "starting", "state": "STARTING", "start_time_s": 2.0})
    counts = running_replicas(status)
    assert counts == dict.fromkeys(names(config), 1)
    assert "r-router" in replica_ids(status) and "starting" in replica_ids(status)
    assert running_replicas({"applications": {}}) == {}


def test_pending_until_the_new_config_runs_everywhere(config) -> None:
    new = inplace_config(config, CHANGE)
    live = CHANGE.model_dump(exclude_none=True)
    at = 100.0
    assert "not taken" in pending(healthy(config, deployed_at=at - 1), new, at, set())
    assert "DEPLOYING" in pending(healthy(config, app_status="DEPLOYING", deployed_at=at),
                                  new, at, set())
    assert "user_config" in pending(healthy(config, deployed_at=at), new, at, set())
    updating = healthy(config, user_config=live, deployed_at=at)
    router = updating["applications"][APP_NAME]["deployments"]["router"]
    router["replicas"][0]["state"] = "UPDATING"  # reconfigure() still running
    assert "router" in pending(updating, new, at, set())
    assert pending(healthy(config, user_config=live, deployed_at=at), new, at, set()) is None
    # After a restarting change: live only once no replica from before is left.
    old = replica_ids(healthy(config))
    assert "from before" in pending(healthy(config, deployed_at=at), config, at, old)
    assert pending(healthy(config, deployed_at=at, prefix="new"), config, at, old) is None
    with pytest.raises(RuntimeError, match="boom"):
        pending(healthy(config, app_status="DEPLOY_FAILED", deployed_at=at, message="boom"),
                new, at, set())


def test_pick_replica_takes_a_running_one(config) -> None:
    status = serve_status({"generator-small": {"replicas": [
        ("old", "STOPPING", 11), ("new", "RUNNING", 12), ("other", "RUNNING", 13)]}})
    replica = pick_replica(status, "generator-small")
    assert (replica["replica_id"], replica["pid"], replica["actor_id"]) == ("new", 12, "actor-new")
    with pytest.raises(RuntimeError, match="no RUNNING replica"):
        pick_replica(serve_status({"router": {"replicas": [("s", "STARTING", None)]}}), "router")


def test_a_replica_whose_process_died_is_not_counted_nor_picked() -> None:
    """Serve lists a SIGKILLed replica as RUNNING until it notices; the OS knows at once."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = serve_status({"postprocessor": {"replicas": [
        ("dead", "RUNNING", dead.pid), ("live", "RUNNING", os.getpid())]}})
    assert running_replicas(status) == {"postprocessor": 2}  # Serve's view
    assert running_replicas(status, process_alive) == {"postprocessor": 1}
    assert pick_replica(status, "postprocessor", process_alive)["replica_id"] == "live"


def test_unknown_target_names_the_known_deployments(config) -> None:
    with pytest.raises(KeyError, match=r"known: .*generator-small.*postprocessor"):
        pick_replica(healthy(config), "generator")


# ------------------------------------------------------------------ the control's flow
class FakeDashboard:
    """Test double for Serve's controller behind the dashboard (see the module docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.deployed: list[dict[str, Any]] = []
        self.ids = itertools.count()
        self.state = self._running(config, time.time() - 60)
        self.calls_since_deploy = 0

    def _running(self, config: dict[str, Any], at: float) -> dict[str, Any]:
        app = app_config(config)
        self.args = copy.deepcopy(app.get("args"))
        return serve_status({d["name"]: {"user_config": d.get("user_config"),
                                         "replicas": [(f"r{next(self.ids)}", "RUNNING", 1)]}
                             for d in app["deployments"]}, deployed_at=at)

    def deploy(self, config: dict[str, Any]) -> None:
        self.deployed.append(copy.deepcopy(config))
        restart = app_config(config).get("args") != self.args
        old = self.state
        self.state = self._running(config, time.time())
        if not restart:  # in place: the same replicas, reconfigured
            for name, d in self.state["applications"][APP_NAME]["deployments"].items():
                d["replicas"] = old["applications"][APP_NAME]["deployments"][name]["replicas"]
        self.calls_since_deploy = 0

    def status(self) -> dict[str, Any]:
        self.calls_since_deploy += 1
        if self.deployed and self.calls_since_deploy <= 2:  # the controller still at work
            updating = copy.deepcopy(self.state)
            updating["applications"][APP_NAME]["status"] = "DEPLOYING"
            return updating
        return self.state


@pytest.fixture
def control(config, settings, monkeypatch) -> RayControl:
    monkeypatch.setattr(rollout, "POLL_S", 0.01)
    stack = RunningStack(url="http://127.0.0.1:8123", metrics_url="http://127.0.0.1:1/metrics",
                         dashboard=Dashboard("http://127.0.0.1:1", "token"), ray_env={},
                         temp_dir=Path("/nonexistent"), config=config)
    ray_control = RayControl(stack, settings)
    ray_control.stack.dashboard = FakeDashboard(config)  # type: ignore[assignment]
    return ray_control


def test_inplace_rollout_and_rollback(control, config, settings) -> None:
    original = copy.deepcopy(config)
    result = control.rollout(CHANGE, "inplace", 30)
    fake: FakeDashboard = control.stack.dashboard  # type: ignore[assignment]
    assert fake.deployed == [inplace_config(original, CHANGE)]
    assert fake.calls_since_deploy > 2  # waited through DEPLOYING
    assert result["revision"] == revision_of(CHANGE.apply(settings))
    assert result["revision"].startswith("b-")
    assert (result["percent"], result["mode"], result["replicas_restarted"]) == (
        100, "inplace", [])
    assert "30%" in result["detail"] and "cannot split" in result["detail"]
    assert control.stack.config == original

    back = control.rollback()
    assert fake.deployed[-1] == original  # exactly the original, user_config {} included
    assert back["revision"] == revision_of(settings)
    assert (back["mode"], back["replicas_restarted"]) == ("inplace", [])


def test_restart_rollout_replaces_replicas_and_rollback_restarts_again(control, settings):
    before = replica_ids(control.stack.dashboard.status())
    result = control.rollout(CHANGE, "restart", 100)
    assert result["mode"] == "restart" and result["percent"] == 100
    assert sorted(result["replicas_restarted"]) == sorted(before)
    assert result["revision"] == revision_of(CHANGE.apply(settings))
    back = control.rollback()
    assert back["mode"] == "restart" and len(back["replicas_restarted"]) == len(before)
    with pytest.raises(ValueError, match="canary"):
        control.rollout(CHANGE, "canary", 10)


def test_rollout_rejects_an_invalid_change_before_deploying(control) -> None:
    with pytest.raises(ValueError, match="passages"):
        control.rollout(RevisionChange(prompt_template="no placeholder"), "inplace", 100)
    assert control.stack.dashboard.deployed == []  # type: ignore[attr-defined]


# ------------------------------------------------------------------ kill, for real
def test_kill_sigkills_the_replica_and_its_children(control, monkeypatch) -> None:
    """A process that owns a child, as a generator replica owns its vLLM EngineCore."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "time.sleep(60)")])
    try:
        deadline = time.monotonic() + 20
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = psutil.Process(parent.pid).children()[0]
        status = serve_status({"generator-small": {"replicas": [("g1", "RUNNING", parent.pid)]}})
        monkeypatch.setattr(control.stack.dashboard, "status", lambda: status)
        result = control.kill("generator-small")
        assert result == {"target": "generator-small", "pid": parent.pid, "replica_id": "g1",
                          "actor_id": "actor-g1", "children": [child.pid]}
        assert parent.wait(timeout=10) == -9  # SIGKILL
        _, alive = psutil.wait_procs([child], timeout=10)
        assert alive == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()

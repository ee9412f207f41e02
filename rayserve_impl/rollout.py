"""Rollout, rollback and replica failure on the local Ray stack (`control.StackControl`).

Serve has no revisions or rollback command: a revision is a config, and `serve deploy` (a PUT
to the dashboard) of another config is both rollout and rollback. Two kinds of change:
- "inplace": the change as every deployment's `user_config` (ingress included: it reports the
  revision). Serve calls `reconfigure()` on the running replicas; nothing restarts.
- "restart": the change baked into the application's `args.settings`. The args are part of the
  app's code version, so Serve rebuilds the app and replaces every replica; with the default
  `max_surge_percent` 0 an old replica stops before its replacement starts (a gap per replica).
Rollback deploys the original config again: in place after an in-place change, another full
restart after a restarting one (the original args are a different code version again).

Serve cannot split one application's traffic between two revisions, so a rollout always takes
100% of traffic (reported as such). When a change is live is read from Serve's status, never
from a sleep: after the PUT (which returns once the controller has applied it, leaving the app
DEPLOYING) we wait for the app to be RUNNING again with `last_deployed_time_s` from our PUT,
every deployment HEALTHY (Serve says HEALTHY only when every replica runs the target version,
which covers `user_config`: a replica stays UPDATING until `reconfigure()` returned), every
deployment's target `user_config` equal to ours, and, after a restarting change, none of the
replicas from before left.

`kill` SIGKILLs a replica's worker process and its children (a generator's vLLM EngineCore) as
a node failure would; Serve's controller notices and starts a replacement. Serve notices late
(its status lists the dead replica as RUNNING for a while), so `replicas` and `kill` also ask
the OS whether a replica's process is alive: the local stack runs on this host.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from rayserve_impl.live_config import apply_user_config
from rayserve_impl.local import READY_TIMEOUT_S, RunningStack
from rayserve_impl.serve_config import APP_NAME, with_settings
from shared_pipeline.config import Settings
from shared_pipeline.control import ChangeMode
from shared_pipeline.revision import RevisionChange, revision_of

INPLACE_TIMEOUT_S = 120.0  # reconfigure() rebuilds stage objects: seconds, not minutes
RESTART_TIMEOUT_S = READY_TIMEOUT_S  # two vLLM engines start again
POLL_S = 0.25
NO_SPLIT = ("Ray Serve cannot split one application's traffic between revisions: "
            "the new revision takes 100%")


# ------------------------------------------------------------------ configs (pure)
def app_config(config: dict[str, Any]) -> dict[str, Any]:
    """The twinserve application in a Serve config."""
    for app in config["applications"]:
        if app["name"] == APP_NAME:
            return app
    raise KeyError(f"no application {APP_NAME!r} in the Serve config")


def inplace_config(config: dict[str, Any], change: RevisionChange) -> dict[str, Any]:
    """A copy of `config` with `change` as every deployment's `user_config`, nothing else."""
    new = copy.deepcopy(config)
    live = change.model_dump(exclude_none=True)
    for deployment in app_config(new)["deployments"]:
        deployment["user_config"] = copy.deepcopy(live)
    return new


def restart_config(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A copy of `config` whose app args carry `settings` (as `local_config` writes them)."""
    return with_settings(copy.deepcopy(config), settings)


def restarts_replicas(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether deploying `new` over `old` rebuilds the app (its code version covers the
    import path, runtime_env and args; only the args ever change here)."""
    keys = ("import_path", "runtime_env", "args")
    return any(app_config(old).get(k) != app_config(new).get(k) for k in keys)


# ------------------------------------------------------------------ status (pure)
# The status is `GET /api/serve/applications/`: `ServeInstanceDetails` in ray/serve/schema.py.
def app_details(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("applications") or {}).get(APP_NAME) or {}


def deployment_details(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return app_details(status).get("deployments") or {}


def replica_ids(status: dict[str, Any]) -> set[str]:
    """Ids of every live replica of the app (any state)."""
    return {r["replica_id"] for d in deployment_details(status).values()
            for r in d.get("replicas") or []}


def process_alive(pid: int | None) -> bool:
    """Whether a replica's worker process still runs on this host (unknown pid: trust Serve).

    Serve's status lags a SIGKILL by up to a health-check period (a killed replica stays
    RUNNING there for seconds); the local stack's processes are on this host, so ask the OS.
    """
    if not pid:
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _always(pid: int | None) -> bool:
    return True


def running_replicas(status: dict[str, Any],
                     alive: Callable[[int | None], bool] = _always) -> dict[str, int]:
    """Deployment name -> replicas in state RUNNING whose process is `alive`."""
    return {name: sum(r.get("state") == "RUNNING" and alive(r.get("pid"))
                      for r in d.get("replicas") or [])
            for name, d in deployment_details(status).items()}


def pick_replica(status: dict[str, Any], target: str,
                 alive: Callable[[int | None], bool] = _always) -> dict[str, Any]:
    """The first RUNNING replica (in Serve's order) of deployment `target` that is `alive`."""
    deployments = deployment_details(status)
    if target not in deployments:
        raise KeyError(f"no deployment {target!r} in application {APP_NAME!r}; known: "
                       f"{', '.join(sorted(deployments)) or 'none (is the app running?)'}")
    for replica in deployments[target].get("replicas") or []:
        if replica.get("state") == "RUNNING" and replica.get("pid") and alive(replica["pid"]):
            return replica
    states = [r.get("state") for r in deployments[target].get("replicas") or []]
    raise RuntimeError(f"deployment {target!r} has no RUNNING replica (replica states: {states})")


def _same_user_config(a: Any, b: Any) -> bool:
    return a == b or (not a and not b)  # absent, null and {} all mean "no live change"


def pending(status: dict[str, Any], config: dict[str, Any], deployed_at: float,
            replaced: set[str]) -> str | None:
    """Why the deploy of `config` (PUT at `deployed_at`) is not live yet; None once it is.

    Raises if Serve gave up on it (DEPLOY_FAILED).
    """
    app = app_details(status)
    if app.get("last_deployed_time_s", 0.0) < deployed_at:
        return "the controller has not taken the new config yet"
    if app.get("status") == "DEPLOY_FAILED":
        raise RuntimeError(f"Serve application failed to deploy: {app.get('message', '')}")
    if app.get("status") != "RUNNING":
        return f"application {app.get('status', 'NOT_STARTED')}"
    deployments = deployment_details(status)
    for wanted in app_config(config)["deployments"]:
        name = wanted["name"]
        details = deployments.get(name)
        if details is None:
            return f"{name}: not deployed yet"
        if details.get("status") != "HEALTHY":
            return f"{name}: {details.get('status')}"
        target = (details.get("deployment_config") or {}).get("user_config")
        if not _same_user_config(target, wanted.get("user_config")):
            return f"{name}: target user_config {target!r} is not the one deployed"
        replicas = details.get("replicas") or []
        if not replicas or any(r.get("state") != "RUNNING" for r in replicas):
            return f"{name}: replicas {[r.get('state') for r in replicas]}"
        if replaced & {r["replica_id"] for r in replicas}:
            return f"{name}: a replica from before the change is still running"
    return None


# ------------------------------------------------------------------ the control
class RayControl:
    """Rollouts (in place or restarting), rollback and replica kills on a running local stack."""

    modes: tuple[ChangeMode, ...] = ("inplace", "restart")

    def __init__(self, stack: RunningStack, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings  # what the stack was started with (its args.settings)
        self.original = copy.deepcopy(stack.config)  # what rollback restores, exactly
        self.deployed = self.original

    # ------------------------------------------------------------ revisions
    def rollout(self, change: RevisionChange, mode: ChangeMode = "inplace",
                percent: int = 100) -> dict[str, Any]:
        if mode not in self.modes:
            raise ValueError(f"Ray Serve rolls out {' or '.join(self.modes)}, not {mode!r}")
        settings = change.apply(self.settings)  # validates the change before deploying it
        if mode == "inplace":
            config = inplace_config(self.original, change)
            what = "user_config on every deployment (reconfigure, no restart)"
        else:
            config = restart_config(self.original, settings)
            what = "app args.settings (app rebuilt, replicas replaced, max_surge_percent 0)"
        restarted, took_s = self._deploy(config)
        split = "" if percent == 100 else f"; asked for {percent}%: {NO_SPLIT}"
        return {"revision": revision_of(settings), "percent": 100, "mode": mode,
                "replicas_restarted": restarted,
                "detail": f"serve deploy: {what}; live after {took_s:.1f}s, "
                          f"{len(restarted)} replicas restarted{split}"}

    def rollback(self) -> dict[str, Any]:
        mode = "restart" if restarts_replicas(self.deployed, self.original) else "inplace"
        restarted, took_s = self._deploy(self.original)
        # The ingress's original user_config (the manifest's default: {}) names the revision.
        live = next((d.get("user_config") for d in app_config(self.original)["deployments"]
                     if d["name"] == "ingress"), None)
        return {"revision": revision_of(apply_user_config(self.settings, live)),
                "percent": 100, "mode": mode, "replicas_restarted": restarted,
                "detail": f"serve deploy of the original config ({mode}); live after "
                          f"{took_s:.1f}s, {len(restarted)} replicas restarted"}

    def _deploy(self, config: dict[str, Any]) -> tuple[list[str], float]:
        """PUT `config`, wait until it is live; (replica ids gone since, seconds taken)."""
        restarting = restarts_replicas(self.deployed, config)
        before = replica_ids(self.stack.dashboard.status())
        started = time.perf_counter()
        deployed_at = time.time()  # the controller stamps the deploy with its own time.time()
        self.stack.dashboard.deploy(config)
        self.deployed = config
        status = self._wait(config, deployed_at, before if restarting else set(),
                            RESTART_TIMEOUT_S if restarting else INPLACE_TIMEOUT_S)
        return sorted(before - replica_ids(status)), time.perf_counter() - started

    def _wait(self, config: dict[str, Any], deployed_at: float, replaced: set[str],
              timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        why = "no status yet"
        while time.monotonic() < deadline:
            try:
                status = self.stack.dashboard.status()
            except httpx.HTTPError as error:
                why = f"status call failed: {error}"
            else:
                why = pending(status, config, deployed_at, replaced)
                if why is None:
                    return status
            time.sleep(POLL_S)
        raise TimeoutError(f"the new config was not live after {timeout_s:.0f}s: {why}")

    # ------------------------------------------------------------ failures and counts
    def kill(self, target: str) -> dict[str, Any]:
        replica = pick_replica(self.stack.dashboard.status(), target, process_alive)
        pid = replica["pid"]
        try:
            process = psutil.Process(pid)
            children = process.children(recursive=True)
        except psutil.NoSuchProcess as error:
            raise RuntimeError(f"replica {replica['replica_id']} of {target} (pid {pid}) "
                               "is already gone") from error
        # Children first (a generator's vLLM EngineCore): killed after their parent they would
        # linger as orphans; the replica right after, so Serve sees one sudden death.
        for child in [*children, process]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        return {"target": target, "pid": pid, "replica_id": replica["replica_id"],
                "actor_id": replica.get("actor_id"), "children": [c.pid for c in children]}

    def replicas(self) -> dict[str, int]:
        try:
            return running_replicas(self.stack.dashboard.status(), process_alive)
        except httpx.HTTPError:
            return {}  # a missed sample, not a zero

    def metrics_urls(self) -> list[str]:
        return [self.stack.metrics_url]

    def close(self) -> None:
        """Nothing to stop: rollouts start no processes of their own, and the stack's owner
        tears Ray down."""

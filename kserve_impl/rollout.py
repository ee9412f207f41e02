"""Rollout, rollback and pod failure on the local KServe stack (`control.StackControl`).

What a cluster does, and what stands in for it here:
- A new revision of an InferenceService (Knative mode): the controller creates a Knative
  revision from the changed spec, and once it is ready the route sends `canaryTrafficPercent`%
  of calls to it; `canaryTrafficPercent: 0` pins all traffic back to the previous revision,
  which kept running. Locally, `rollout` starts a second model server for every
  InferenceService the change touches (the same container command, the changed settings), waits
  until it is ready, then sets the entry's split for that service (`graph.TRAFFIC_PATH`): the
  graph runner's, or in the orchestrated topology the orchestrator's stage client's.
  `rollback` sets the split back to 0 at once; the new revision's servers keep running until
  `close()`, as a Knative revision stays until it scales to zero.
- A pod that dies is restarted by the kubelet: locally the stack's supervisor restarts the
  server on the same port (`LocalStack.supervise`); `kill` sends the SIGKILL.
The cluster path (the same operations through the Kubernetes API) is `kserve_impl.cluster`.
"""

from __future__ import annotations

import signal
from typing import Any

import httpx

from kserve_impl.graph import TRAFFIC_PATH
from kserve_impl.local import STOP_TIMEOUT_S, LocalStack
from kserve_impl.manifests import load_services
from kserve_impl.server_process import ServerProcess
from shared_pipeline.config import Settings
from shared_pipeline.control import ChangeMode
from shared_pipeline.processes import kill_group, stop_all
from shared_pipeline.revision import RevisionChange, revision_of


class KServeControl:
    """Canary rollouts and pod kills on a running `LocalStack` (started with supervision)."""

    modes: tuple[ChangeMode, ...] = ("canary",)

    def __init__(self, stack: LocalStack, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings
        self.services = {s.name: s for s in load_services(stack.manifest_dir)}
        self.canaries: list[ServerProcess] = []
        self._split: dict[str, str] = {}  # service -> canary URL while traffic goes there

    # ------------------------------------------------------------ revisions
    def rollout(self, change: RevisionChange, mode: ChangeMode = "canary",
                percent: int = 100) -> dict[str, Any]:
        if mode not in self.modes:
            raise ValueError(f"KServe rolls out as a canary (canaryTrafficPercent), not {mode!r}")
        settings = change.apply(self.settings)
        revision = revision_of(settings)
        touched = [s for s in self.services.values() if s.stage in change.stages()]
        if not touched:
            raise ValueError(f"the change touches no InferenceService: {change}")
        env = self.stack.env_for(settings, f"settings-{revision}")
        started = []
        for service in touched:
            server = self.stack.model_server(service, f"{service.name}@{revision}")
            self.stack.launch(server, env)
            started.append((service, server))
        self.canaries += [server for _, server in started]
        self.stack.wait_ready([server for _, server in started])  # Knative: latestReadyRevision
        for service, server in started:
            url = f"{server.url}{service.predict_path()}"
            self._set_traffic(service.name, url, percent)
            self._split[service.name] = url
        return {"revision": revision, "percent": percent, "services": [s.name for s in touched],
                "detail": f"canaryTrafficPercent={percent} on "
                          f"{', '.join(s.name for s in touched)} (new servers ready in "
                          + ", ".join(f"{srv.ready_after_s:.1f}s" for _, srv in started) + ")"}

    def rollback(self) -> dict[str, Any]:
        services = list(self._split)
        for name in services:
            self._set_traffic(name, self._split.pop(name), 0)
        return {"percent": 0, "services": services,
                "detail": f"canaryTrafficPercent=0 on {', '.join(services) or 'nothing'}"}

    def _set_traffic(self, service: str, url: str, percent: int) -> None:
        response = httpx.put(self.stack.url + TRAFFIC_PATH, timeout=10, json={
            "service": service, "canary_url": url, "percent": percent})
        response.raise_for_status()

    # ------------------------------------------------------------ failures and counts
    def kill(self, target: str) -> dict[str, Any]:
        server = next((s for s in self.stack.servers if s.name == target), None)
        if server is None or server.process is None:
            known = ", ".join(s.name for s in self.stack.servers)
            raise KeyError(f"no running server {target!r}; known: {known}")
        pid = server.process.pid
        kill_group(pid, signal.SIGKILL)  # the server's own process group: it and its children
        return {"target": target, "pid": pid}

    def replicas(self) -> dict[str, int]:
        counts = {}
        with httpx.Client(timeout=1.0) as client:
            for server in [*self.stack.servers, *self.canaries]:
                counts[server.name] = int(server.exit_code() is None
                                          and server.is_ready(client))
        return counts

    def metrics_urls(self) -> list[str]:
        urls = [f"{s.url}/metrics" for s in [*self.stack.servers, *self.canaries]]
        if self.stack.topology == "orchestrated":  # the entry is a model server too
            urls.append(f"{self.stack.url}/metrics")
        return urls

    def close(self) -> None:
        """Roll back if needed, then stop the new revision's servers."""
        if self._split:
            self.rollback()
        stop_all([self.canaries], STOP_TIMEOUT_S)
        self.canaries.clear()

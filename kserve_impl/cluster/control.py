"""`ClusterControl`: the rollback experiment's `StackControl` on a real cluster.

It rolls a `RevisionChange` out to the InferenceServices of `manifests/kserve/` whose stage the
change touches (their `--stage` argument against `change.stages()`), as a canary in each ISVC's
own deployment mode (`knative.py`, `standard.py`), rolls every one of them back, kills pods and
counts replicas. It remembers what it rolled since the last rollback: that is what a rollback
undoes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kserve_impl.cluster import knative, standard
from kserve_impl.cluster.api import InferenceServices, Pending
from kserve_impl.cluster.env import revision_label, settings_env
from kserve_impl.cluster.pods import ready_pods, replica_key
from kserve_impl.cluster.status import KNATIVE, deployment_mode, predictor_status
from kserve_impl.manifests import ServiceManifest, load_services
from shared_pipeline.control import ChangeMode
from shared_pipeline.revision import RevisionChange


@dataclass
class _Rolled:
    """One ISVC rollouts changed since the last rollback: what a rollback undoes."""

    name: str
    mode: str
    # Standard: the canary predictors' names; Knative: the new Knative revisions
    canaries: list[str] = field(default_factory=list)
    previous: str | None = None  # Knative: the revision that had 100% (the rollback target)


class ClusterControl:
    """`StackControl` for the pipeline's InferenceServices in one namespace of a cluster."""

    modes: tuple[ChangeMode, ...] = ("canary",)

    def __init__(self, namespace: str, api_client: k8s.ApiClient | None = None, *,
                 services: list[ServiceManifest] | None = None, timeout_s: float = 900.0,
                 poll_s: float = 2.0) -> None:
        self.namespace = namespace
        self.api_client = api_client or k8s.ApiClient()
        self.core = k8s.CoreV1Api(self.api_client)
        self.isvcs = InferenceServices(k8s.CustomObjectsApi(self.api_client), namespace,
                                       timeout_s=timeout_s, poll_s=poll_s)
        self.services = services if services is not None else load_services()
        self._rolled: dict[str, _Rolled] = {}  # ISVC -> what a rollback undoes
        self._revision: str | None = None
        # (isvc, Knative revision) -> rollout revision label, for `replicas()` keys
        self._labels: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, namespace: str | None = None, *, context: str | None = None,
                        config_file: str | None = None, **kwargs: Any) -> ClusterControl:
        """A control on the cluster of a kubeconfig context (default: the current one, and its
        namespace when `namespace` is not given)."""
        if namespace is None:
            contexts, current = k8s_config.list_kube_config_contexts(config_file=config_file)
            chosen = next((c for c in contexts if c["name"] == context), current) \
                if context else current
            namespace = chosen.get("context", {}).get("namespace") or "default"
        api_client = k8s_config.new_client_from_config(config_file=config_file, context=context)
        return cls(namespace, api_client=api_client, **kwargs)

    # ------------------------------------------------------------ revisions
    def rollout(self, change: RevisionChange, mode: ChangeMode, percent: int) -> dict[str, Any]:
        """Roll `change` out as a canary with `percent` of the traffic of every ISVC whose stage
        it touches; return once each one's status shows that split, Ready."""
        if mode not in self.modes:
            raise ValueError(f"KServe rolls out as {self.modes}, not {mode!r}")
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be 0..100, not {percent}")
        stages = change.stages()
        targets = [s.name for s in self.services if s.stage in stages]
        if not targets:
            raise ValueError(f"{change!r} changes no stage, so no InferenceService to roll out")
        env, revision = settings_env(change), revision_label(change)
        pending: list[Pending] = []
        details = []
        for name in targets:  # patch them all, then wait: the ISVCs roll in parallel
            isvc = self.isvcs.get(name)
            isvc_mode = deployment_mode(isvc)
            if isvc_mode == KNATIVE:
                knative.refuse_promotion(name, percent)
                pending.append(knative.rollout(self.isvcs, isvc, env, percent))
                details.append(f"{name}: Knative canaryTrafficPercent={percent}")
            else:
                pending.append(standard.rollout(self.isvcs, isvc, env, revision, percent))
                details.append(f"{name}: Standard spec.canary {revision!r} at {percent}%")
            # recorded once patched, so a rollback also undoes a rollout that failed later
            with self._lock:
                record = self._rolled.setdefault(name, _Rolled(name, isvc_mode))
                if isvc_mode == KNATIVE:
                    record.previous = record.previous or knative.stable_revision(isvc)
                elif revision not in record.canaries:
                    record.canaries.append(revision)
                self._revision = revision
        ready = self.isvcs.wait(pending)
        revisions = {}
        with self._lock:
            for name in targets:
                record = self._rolled[name]
                if record.mode == KNATIVE:  # the new revision's name is known only now
                    canary = predictor_status(ready[name])["latestReadyRevision"]
                    if canary not in record.canaries:
                        record.canaries.append(canary)
                    self._labels[(name, canary)] = revision
                    revisions[name] = canary
                else:
                    revisions[name] = standard.canary_deployment(name, revision)
        return {"revision": revision, "percent": percent, "services": targets,
                "revisions": revisions, "env": env, "detail": "; ".join(details)}

    def rollback(self) -> dict[str, Any]:
        """All traffic back to the revisions from before the rollouts since the last rollback:
        Knative pins `canaryTrafficPercent: 0`, Standard drops those canary entries; waits for
        the status to say so."""
        with self._lock:
            rolled, revision = list(self._rolled.values()), self._revision
        if not rolled:
            return {"revision": None, "percent": 0, "services": [], "revisions": {},
                    "detail": "nothing rolled out"}
        pending, revisions, details = [], {}, []
        for record in rolled:
            if record.mode == KNATIVE:
                pending.append(knative.rollback(self.isvcs, record.name, record.previous,
                                                record.canaries))
                revisions[record.name] = record.previous
                details.append(f"{record.name}: Knative canaryTrafficPercent=0")
            else:
                pending.append(standard.rollback(self.isvcs, record.name, record.canaries))
                revisions[record.name] = "stable predictor"
                details.append(f"{record.name}: Standard spec.canary {record.canaries} removed")
        self.isvcs.wait(pending)
        with self._lock:
            self._rolled, self._revision = {}, None
        return {"revision": revision, "percent": 0, "services": [r.name for r in rolled],
                "revisions": revisions, "detail": "; ".join(details)}

    # ------------------------------------------------------------ failures and counts
    def _replica_keys(self, names: list[str]) -> list[tuple[str, k8s.V1Pod]]:
        isvcs = self.isvcs.list()
        with self._lock:
            labels = dict(self._labels)
        return [(replica_key(pod, isvcs, labels), pod)
                for pod in ready_pods(self.core, self.namespace, names)]

    def kill(self, target: str) -> dict[str, Any]:
        """Delete one Ready pod of `target` (an ISVC, or `<isvc>@<revision>` for a canary's)
        at once, grace period 0, as a node failure would; its controller replaces it."""
        name = target.split("@", 1)[0]
        pods = sorted((pod.metadata.name for key, pod in self._replica_keys([name])
                       if key == target))
        if not pods:
            raise RuntimeError(f"no Ready pod of {target} in namespace {self.namespace}")
        self.core.delete_namespaced_pod(pods[0], self.namespace, grace_period_seconds=0)
        return {"target": target, "pid": None, "pod": pods[0]}

    def replicas(self) -> dict[str, int]:
        """Ready pods per ISVC (0 where none is), canary pods as `<isvc>@<revision>`."""
        counts = dict.fromkeys((s.name for s in self.services), 0)
        for key, _ in self._replica_keys([s.name for s in self.services]):
            counts[key] = counts.get(key, 0) + 1
        return counts

    def metrics_urls(self) -> list[str]:
        """None: on a cluster Prometheus scrapes every pod (PodMonitor, the
        `serving.kserve.io/enable-prometheus-scraping` annotation), canary pods included, and
        the experiment queries Prometheus instead of sampling /metrics endpoints itself."""
        return []

    def close(self) -> None:
        """Nothing to stop: the canaries are the cluster's objects, not processes of ours."""

"""The rollback experiment on a real cluster: `StackControl` for the InferenceServices of
`manifests/kserve/`, driven through the Kubernetes API (the official `kubernetes` client).

A rollout changes the settings of a running revision (`RevisionChange`), so the new revision is
the same image with `TWINSERVE_*` environment variables on its `kserve-container` (pydantic
settings read them: `TWINSERVE_POSTPROCESS__FAIL_RATIO=0.5`). Which InferenceServices roll is
decided by the stage each one serves (its `--stage` argument) and `change.stages()`. How the
traffic moves depends on the ISVC's deployment mode (kserve.md 4.4):

- Knative (legacy name Serverless): one merge patch sets the new env and
  `spec.predictor.canaryTrafficPercent`; Knative makes a new revision and KServe sends `percent`
  to it, the rest to the last revision that had 100% (`latestRolledoutRevision`). A rollback
  pins `canaryTrafficPercent: 0`, which sends 100% back to that revision (the new spec stays, as
  KServe's pinned-rollout sample does).
- Standard (legacy name RawDeployment): a named entry in `spec.canary` (KServe >= 0.20) runs the
  changed predictor as its own Deployment `{isvc}-{name}-predictor`; the Gateway API route sends
  it `trafficPercent` once it is Ready. A rollback removes the entry. Not checked against a
  live KServe: kserve.md lists a webhook rule that the stable predictor must name a model
  (`storageUri`, or `STORAGE_URI` on the `kserve-container`), which the shipped manifests'
  custom containers do not; a refused patch is raised with the webhook's message.

Every call waits on the ISVC's status, not on a sleep: `observedGeneration` has caught up with the
patch, `Ready` is True, and the traffic status says what was asked. A wait that runs out raises
`TimeoutError` naming the ISVC, what it waited for and the status it last saw.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel

from kserve_impl.manifests import CONTAINER_NAME, ServiceManifest, load_services
from shared_pipeline.config import Settings
from shared_pipeline.control import ChangeMode
from shared_pipeline.revision import RevisionChange

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # on every pod of an ISVC, both modes
KNATIVE_REVISION_LABEL = "serving.knative.dev/revision"
KNATIVE, STANDARD = "Knative", "Standard"
# KServe's ParseDeploymentMode: the legacy names still accepted in the annotation.
_MODE_NAMES = {"knative": KNATIVE, "serverless": KNATIVE,
               "standard": STANDARD, "rawdeployment": STANDARD}
# Fields KServe's webhook refuses on a canary predictor (scaling belongs to the stable one), and
# minReplicas, which KServe derives from trafficPercent when the canary leaves it out.
_CANARY_DROPPED = ("maxReplicas", "minReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
                   "autoScaling", "workerSpec", "canaryTrafficPercent")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # the CRD's pattern for predictor.name
MERGE_PATCH = "application/merge-patch+json"


# ------------------------------------------------------------------ settings -> environment
def setting_env_name(name: str) -> str:
    """The environment variable pydantic-settings reads field `name` of `RevisionChange` from.

    Derived from `Settings` itself (prefix, nesting delimiter, the section that declares the
    field), so a field added to `RevisionChange` and its section needs no change here.
    """
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    if name in Settings.model_fields:
        return f"{prefix}{name}".upper()
    sections = [section for section, info in Settings.model_fields.items()
                if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
                and name in info.annotation.model_fields]
    if len(sections) != 1:
        raise ValueError(f"RevisionChange.{name}: expected in exactly one Settings section, "
                         f"found {sections or 'none'}")
    return f"{prefix}{sections[0]}{delimiter}{name}".upper()


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def settings_env(change: RevisionChange) -> dict[str, str]:
    """The `TWINSERVE_*` variables that make a server run `change` (only the fields it sets)."""
    return {setting_env_name(name): _env_value(value)
            for name, value in change.model_dump(exclude_none=True).items()}


def with_env(containers: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    """A copy of a predictor's containers with `env` set on the `kserve-container` (replacing
    variables of the same name in place, appending the others)."""
    result = copy.deepcopy(containers)
    container = next((c for c in result if c.get("name") == CONTAINER_NAME), None)
    if container is None:
        raise ValueError(f"the predictor has no {CONTAINER_NAME!r} container")
    pending = dict(env)
    merged = []
    for var in container.get("env") or []:
        if var.get("name") in pending:
            merged.append({"name": var["name"], "value": pending.pop(var["name"])})
        else:
            merged.append(var)
    container["env"] = merged + [{"name": k, "value": v} for k, v in pending.items()]
    return result


def revision_label(change: RevisionChange) -> str:
    """The new revision's name: its `revision_name`, else one derived from the change. It names
    the Standard-mode canary (`predictor.name`, a DNS label) and `<isvc>@<revision>` replicas."""
    name = change.revision_name
    if not name:
        blob = change.model_dump_json(exclude_none=True).encode()
        return "r" + hashlib.sha256(blob).hexdigest()[:8]
    name = name.rstrip("-")
    return name if _DNS_LABEL.match(name) else f"r{name}"


# ------------------------------------------------------------------ reading an ISVC
def deployment_mode(isvc: dict[str, Any]) -> str:
    """Knative or Standard, from the annotation (legacy names normalised), else from the mode
    the controller recorded in the status (the cluster's default applied)."""
    meta = isvc.get("metadata", {})
    raw = (meta.get("annotations") or {}).get(MODE_ANNOTATION) \
        or isvc.get("status", {}).get("deploymentMode")
    mode = _MODE_NAMES.get(str(raw).lower()) if raw else None
    if mode is None:
        raise ValueError(f"InferenceService {meta.get('name')}: deployment mode {raw!r} has no "
                         f"canary rollout here (Knative/Serverless or Standard/RawDeployment)")
    return mode


def _generation(isvc: dict[str, Any]) -> int:
    return int(isvc.get("metadata", {}).get("generation") or 0)


def _observed(isvc: dict[str, Any]) -> int:
    return int(isvc.get("status", {}).get("observedGeneration") or 0)


def _ready(isvc: dict[str, Any]) -> bool:
    conditions = isvc.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _predictor_status(isvc: dict[str, Any]) -> dict[str, Any]:
    return (isvc.get("status", {}).get("components") or {}).get("predictor") or {}


def _traffic_to(predictor_status: dict[str, Any], revision: str | None) -> int:
    """Percent of the predictor's traffic on `revision` (Knative's route status)."""
    return sum(int(t.get("percent") or 0) for t in predictor_status.get("traffic") or []
               if revision and t.get("revisionName") == revision)


def _canary_status(isvc: dict[str, Any], name: str) -> dict[str, Any] | None:
    statuses = isvc.get("status", {}).get("canaryStatuses") or []
    return next((s for s in statuses if s.get("name") == name), None)


def status_summary(isvc: dict[str, Any]) -> str:
    """What the status said, short, for a timeout's message."""
    status = isvc.get("status", {})
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    parts = [f"generation {_generation(isvc)} observed {_observed(isvc)}",
             f"Ready={ready.get('status', 'unknown')}"
             + (f" ({ready.get('message') or ready.get('reason')})"
                if ready.get("message") or ready.get("reason") else "")]
    predictor = _predictor_status(isvc)
    if predictor.get("traffic"):
        parts.append("traffic " + ", ".join(f"{t.get('revisionName')}={t.get('percent')}%"
                                            for t in predictor["traffic"]))
    if predictor.get("latestReadyRevision"):
        parts.append(f"latestReadyRevision {predictor['latestReadyRevision']}")
    if status.get("canaryStatuses"):
        parts.append("canaryStatuses " + ", ".join(
            f"{s.get('name')} ready={s.get('ready')} {s.get('trafficPercent')}%"
            for s in status["canaryStatuses"]))
    return "; ".join(parts)


# ------------------------------------------------------------------ the control
@dataclass
class _Rolled:
    """One ISVC rollouts changed since the last rollback: what a rollback undoes."""

    name: str
    mode: str
    # Standard: the canary predictors' names; Knative: the new Knative revisions
    canaries: list[str] = field(default_factory=list)
    previous: str | None = None  # Knative: the revision that had 100% (the rollback target)


@dataclass
class _Pending:
    name: str
    what: str
    check: Callable[[dict[str, Any]], bool]


class ClusterControl:
    """`StackControl` for the pipeline's InferenceServices in one namespace of a cluster."""

    modes: tuple[ChangeMode, ...] = ("canary",)

    def __init__(self, namespace: str, api_client: k8s.ApiClient | None = None, *,
                 services: list[ServiceManifest] | None = None, timeout_s: float = 900.0,
                 poll_s: float = 2.0) -> None:
        self.namespace = namespace
        self.api_client = api_client or k8s.ApiClient()
        self.custom = k8s.CustomObjectsApi(self.api_client)
        self.core = k8s.CoreV1Api(self.api_client)
        self.services = services if services is not None else load_services()
        self.timeout_s = timeout_s
        self.poll_s = poll_s
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

    # ------------------------------------------------------------ API calls
    def _where(self, name: str) -> str:
        return f"InferenceService {self.namespace}/{name}"

    def _get(self, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                            PLURAL, name)
        except ApiException as exc:
            raise RuntimeError(f"{self._where(name)}: GET failed ({exc.status} {exc.reason}): "
                               f"{exc.body}") from exc

    def _patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch, _content_type=MERGE_PATCH)
        except ApiException as exc:  # e.g. the KServe webhook refusing the spec
            raise RuntimeError(f"{self._where(name)}: patch refused ({exc.status} "
                               f"{exc.reason}): {exc.body}") from exc

    def _wait(self, pending: list[_Pending]) -> dict[str, dict[str, Any]]:
        """Poll each ISVC until its check passes; one deadline for all of them."""
        deadline = time.monotonic() + self.timeout_s
        done: dict[str, dict[str, Any]] = {}
        for item in pending:
            while True:
                isvc = self._get(item.name)
                if item.check(isvc):
                    done[item.name] = isvc
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{self._where(item.name)}: gave up after {self.timeout_s:g}s waiting "
                        f"for {item.what}; last status: {status_summary(isvc)}")
                time.sleep(self.poll_s)
        return done

    # ------------------------------------------------------------ rollout
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
        pending, details = [], []
        for name in targets:  # patch them all, then wait: the ISVCs roll in parallel
            isvc = self._get(name)
            isvc_mode = deployment_mode(isvc)
            if isvc_mode == KNATIVE and percent == 100:
                # KServe reads canaryTrafficPercent 100 as a promotion: the new revision becomes
                # the rolled-out one, and 0 afterwards no longer reaches the old one.
                raise ValueError(f"{name}: in Knative mode canaryTrafficPercent 100 promotes "
                                 "the new revision; roll out a canary at 1..99 to keep a "
                                 "rollback")
            if isvc_mode == KNATIVE:
                pending.append(self._knative_rollout(isvc, env, percent))
                details.append(f"{name}: Knative canaryTrafficPercent={percent}")
            else:
                pending.append(self._standard_rollout(isvc, env, revision, percent))
                details.append(f"{name}: Standard spec.canary {revision!r} at {percent}%")
            # recorded once patched, so a rollback also undoes a rollout that failed later
            old = _predictor_status(isvc)
            with self._lock:
                record = self._rolled.setdefault(name, _Rolled(name, isvc_mode))
                if isvc_mode == KNATIVE:  # the last revision with 100%: a pin goes back there
                    record.previous = record.previous or old.get("latestRolledoutRevision") \
                        or old.get("latestReadyRevision")
                elif revision not in record.canaries:
                    record.canaries.append(revision)
                self._revision = revision
        ready = self._wait(pending)
        revisions = {}
        with self._lock:
            for name in targets:
                record = self._rolled[name]
                if record.mode == KNATIVE:  # the new revision's name is known only now
                    canary = _predictor_status(ready[name])["latestReadyRevision"]
                    if canary not in record.canaries:
                        record.canaries.append(canary)
                    self._labels[(name, canary)] = revision
                    revisions[name] = canary
                else:
                    revisions[name] = f"{name}-{revision}-predictor"
        return {"revision": revision, "percent": percent, "services": targets,
                "revisions": revisions, "env": env, "detail": "; ".join(details)}

    def _knative_rollout(self, isvc: dict[str, Any], env: dict[str, str],
                         percent: int) -> _Pending:
        name = isvc["metadata"]["name"]
        predictor = isvc["spec"]["predictor"]
        containers = with_env(predictor.get("containers") or [], env)
        old_ready = _predictor_status(isvc).get("latestReadyRevision")
        new_spec = containers != predictor.get("containers")  # else Knative makes no revision
        patched = self._patch(name, {"spec": {"predictor": {
            "canaryTrafficPercent": percent, "containers": containers}}})
        generation = _generation(patched)

        def check(current: dict[str, Any]) -> bool:
            status = _predictor_status(current)
            latest = status.get("latestReadyRevision")
            return (_observed(current) >= generation and _ready(current) and bool(latest)
                    and latest == status.get("latestCreatedRevision")
                    and (not new_spec or latest != old_ready)
                    and _traffic_to(status, latest) == percent)

        return _Pending(name, f"a new Ready revision with {percent}% of the traffic "
                              f"(Knative canary)", check)

    def _standard_rollout(self, isvc: dict[str, Any], env: dict[str, str], revision: str,
                          percent: int) -> _Pending:
        name = isvc["metadata"]["name"]
        stable = isvc["spec"]["predictor"]
        if stable.get("name") == revision:
            raise ValueError(f"{self._where(name)}: the stable predictor is already named "
                             f"{revision!r}; give the change another revision_name")
        canary = {k: copy.deepcopy(v) for k, v in stable.items() if k not in _CANARY_DROPPED}
        canary["name"] = revision
        canary["containers"] = with_env(stable.get("containers") or [], env)
        others = [c for c in isvc["spec"].get("canary") or []
                  if c.get("predictor", {}).get("name") != revision]
        total = percent + sum(int(c.get("trafficPercent") or 0) for c in others)
        if total > 100:
            raise ValueError(f"{self._where(name)}: canaries would take {total}% (> 100)")
        patched = self._patch(name, {"spec": {"canary": [
            *others, {"trafficPercent": percent, "predictor": canary}]}})
        generation = _generation(patched)

        def check(current: dict[str, Any]) -> bool:
            status = _canary_status(current, revision)
            return (_observed(current) >= generation and _ready(current) and status is not None
                    and status.get("ready") is True
                    and int(status.get("trafficPercent") or 0) == percent)

        return _Pending(name, f"canary {revision!r} Ready with {percent}% in "
                              f"status.canaryStatuses", check)

    # ------------------------------------------------------------ rollback
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
                pending.append(self._knative_rollback(record))
                revisions[record.name] = record.previous
                details.append(f"{record.name}: Knative canaryTrafficPercent=0")
            else:
                pending.append(self._standard_rollback(record))
                revisions[record.name] = "stable predictor"
                details.append(f"{record.name}: Standard spec.canary {record.canaries} removed")
        self._wait(pending)
        with self._lock:
            self._rolled, self._revision = {}, None
        return {"revision": revision, "percent": 0, "services": [r.name for r in rolled],
                "revisions": revisions, "detail": "; ".join(details)}

    def _knative_rollback(self, record: _Rolled) -> _Pending:
        patched = self._patch(record.name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
        generation = _generation(patched)

        def check(current: dict[str, Any]) -> bool:
            status = _predictor_status(current)
            back = (_traffic_to(status, record.previous) == 100 if record.previous else
                    sum(int(t.get("percent") or 0) for t in status.get("traffic") or []) == 100)
            return (_observed(current) >= generation and _ready(current) and back
                    and all(_traffic_to(status, c) == 0 for c in record.canaries))

        target = record.previous or "the previous revision"
        return _Pending(record.name, f"100% of the traffic on {target} (Knative pin)", check)

    def _standard_rollback(self, record: _Rolled) -> _Pending:
        isvc = self._get(record.name)
        others = [c for c in isvc["spec"].get("canary") or []
                  if c.get("predictor", {}).get("name") not in record.canaries]
        # null deletes the field in a merge patch; the list is atomic, so it is sent whole
        patched = self._patch(record.name, {"spec": {"canary": others or None}})
        generation = _generation(patched)

        def check(current: dict[str, Any]) -> bool:
            return (_observed(current) >= generation and _ready(current)
                    and all(_canary_status(current, c) is None for c in record.canaries))

        return _Pending(record.name, f"canary {', '.join(record.canaries)} gone from "
                                     f"status.canaryStatuses", check)

    # ------------------------------------------------------------ pods
    def _ready_pods(self, names: list[str]) -> list[k8s.V1Pod]:
        selector = f"{ISVC_LABEL} in ({','.join(sorted(names))})"
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if _pod_ready(p)]

    def _isvcs(self) -> dict[str, dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return {i["metadata"]["name"]: i for i in listed.get("items", [])}

    def _replica_key(self, pod: k8s.V1Pod, isvcs: dict[str, dict[str, Any]]) -> str:
        """`<isvc>` for the stable revision's pods, `<isvc>@<revision>` for a canary's."""
        name = pod.metadata.labels[ISVC_LABEL]
        isvc = isvcs.get(name)
        if isvc is None:
            return name
        try:
            mode = deployment_mode(isvc)
        except ValueError:
            return name
        if mode == KNATIVE:
            revision = (pod.metadata.labels or {}).get(KNATIVE_REVISION_LABEL)
            stable = _predictor_status(isvc).get("latestRolledoutRevision")
            if not revision or not stable or revision == stable:
                return name
            with self._lock:
                return f"{name}@{self._labels.get((name, revision), revision)}"
        # Standard: a Deployment's pods are named `<deployment>-<hash>-<id>`, and each canary
        # has its own Deployment `{isvc}-{canary}-predictor`.
        stable_name = isvc.get("spec", {}).get("predictor", {}).get("name")
        stable_prefix = f"{name}-{stable_name}-predictor-" if stable_name else f"{name}-predictor-"
        if pod.metadata.name.startswith(stable_prefix):
            return name
        match = re.match(rf"^{re.escape(name)}-(.+)-predictor-", pod.metadata.name)
        return f"{name}@{match[1]}" if match else name

    def kill(self, target: str) -> dict[str, Any]:
        """Delete one Ready pod of `target` (an ISVC, or `<isvc>@<revision>` for a canary's)
        at once, grace period 0, as a node failure would; its controller replaces it."""
        name = target.split("@", 1)[0]
        isvcs = self._isvcs()
        pods = sorted((p for p in self._ready_pods([name])
                       if self._replica_key(p, isvcs) == target), key=lambda p: p.metadata.name)
        if not pods:
            raise RuntimeError(f"no Ready pod of {target} in namespace {self.namespace}")
        pod = pods[0].metadata.name
        self.core.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0)
        return {"target": target, "pid": None, "pod": pod}

    def replicas(self) -> dict[str, int]:
        """Ready pods per ISVC (0 where none is), canary pods as `<isvc>@<revision>`."""
        names = [s.name for s in self.services]
        isvcs = self._isvcs()
        counts = dict.fromkeys(names, 0)
        for pod in self._ready_pods(names):
            key = self._replica_key(pod, isvcs)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def metrics_urls(self) -> list[str]:
        """None: on a cluster Prometheus scrapes every pod (PodMonitor, the
        `serving.kserve.io/enable-prometheus-scraping` annotation), canary pods included, and
        the experiment queries Prometheus instead of sampling /metrics endpoints itself."""
        return []

    def close(self) -> None:
        """Nothing to stop: the canaries are the cluster's objects, not processes of ours."""


def _pod_ready(pod: k8s.V1Pod) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status is None:
        return False
    if pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

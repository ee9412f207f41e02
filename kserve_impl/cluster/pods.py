"""The pods of the pipeline's InferenceServices: which are Ready, and which revision each runs.

A replica is keyed `<isvc>` for the stable revision's pods and `<isvc>@<revision>` for a
canary's, the keys `StackControl.replicas()` and `kill()` use on both stacks. How a pod tells its
revision depends on the mode: Knative labels it with its Knative revision; in Standard mode each
canary is its own Deployment, so the pod name (`<deployment>-<hash>-<id>`) says which.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client as k8s

from kserve_impl.cluster.status import KNATIVE, deployment_mode, predictor_status

ISVC_LABEL = "serving.kserve.io/inferenceservice"  # on every pod of an ISVC, both modes
KNATIVE_REVISION_LABEL = "serving.knative.dev/revision"


def pod_ready(pod: k8s.V1Pod) -> bool:
    """Running, Ready and not being deleted."""
    if pod.metadata.deletion_timestamp is not None or pod.status is None:
        return False
    if pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_pods(core: k8s.CoreV1Api, namespace: str, names: list[str]) -> list[k8s.V1Pod]:
    """The Ready pods of the ISVCs `names`, stable and canary alike."""
    selector = f"{ISVC_LABEL} in ({','.join(sorted(names))})"
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if pod_ready(p)]


def replica_key(pod: k8s.V1Pod, isvcs: dict[str, dict[str, Any]],
                labels: dict[tuple[str, str], str]) -> str:
    """`<isvc>` for the stable revision's pods, `<isvc>@<revision>` for a canary's.

    `labels` maps (isvc, Knative revision) to the rollout's revision name, so a Knative canary
    is keyed as its rollout named it; an unknown Knative revision keeps its own name.
    """
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
        stable = predictor_status(isvc).get("latestRolledoutRevision")
        if not revision or not stable or revision == stable:
            return name
        return f"{name}@{labels.get((name, revision), revision)}"
    stable_name = isvc.get("spec", {}).get("predictor", {}).get("name")
    stable_prefix = f"{name}-{stable_name}-predictor-" if stable_name else f"{name}-predictor-"
    if pod.metadata.name.startswith(stable_prefix):
        return name
    match = re.match(rf"^{re.escape(name)}-(.+)-predictor-", pod.metadata.name)
    return f"{name}@{match[1]}" if match else name

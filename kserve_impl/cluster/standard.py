"""Standard mode (legacy name RawDeployment): a canary is a named entry in `spec.canary`.

The entry (KServe >= 0.20) runs the changed predictor as its own Deployment
`{isvc}-{name}-predictor`; the Gateway API route sends it `trafficPercent` once it is Ready. A
rollback removes the entry. Not checked against a live KServe: kserve.md lists a webhook rule that
the stable predictor must name a model (`storageUri`, or `STORAGE_URI` on the `kserve-container`),
which the shipped manifests' custom containers do not; a refused patch is raised with the
webhook's message.
"""

from __future__ import annotations

import copy
from typing import Any

from kserve_impl.cluster.api import InferenceServices, Pending
from kserve_impl.cluster.env import with_env
from kserve_impl.cluster.status import canary_status, caught_up_and_ready, generation

# Fields KServe's webhook refuses on a canary predictor (scaling belongs to the stable one), and
# minReplicas, which KServe derives from trafficPercent when the canary leaves it out.
_CANARY_DROPPED = ("maxReplicas", "minReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
                   "autoScaling", "workerSpec", "canaryTrafficPercent")


def canary_deployment(isvc_name: str, revision: str) -> str:
    """The Deployment KServe runs a canary entry as."""
    return f"{isvc_name}-{revision}-predictor"


def canary_predictor(stable: dict[str, Any], env: dict[str, str], revision: str) -> dict[str, Any]:
    """A `spec.canary` entry's predictor: the stable predictor, less what KServe refuses on a
    canary, named `revision`, with `env` on its containers."""
    canary = {k: copy.deepcopy(v) for k, v in stable.items() if k not in _CANARY_DROPPED}
    canary["name"] = revision
    canary["containers"] = with_env(stable.get("containers") or [], env)
    return canary


def rollout(isvcs: InferenceServices, isvc: dict[str, Any], env: dict[str, str], revision: str,
            percent: int) -> Pending:
    """Add canary `revision` (the stable predictor with `env`) at `percent`%; wait for its
    entry in `status.canaryStatuses` to be Ready with that share."""
    name = isvc["metadata"]["name"]
    stable = isvc["spec"]["predictor"]
    if stable.get("name") == revision:
        raise ValueError(f"{isvcs.where(name)}: the stable predictor is already named "
                         f"{revision!r}; give the change another revision_name")
    canary = canary_predictor(stable, env, revision)
    others = [c for c in isvc["spec"].get("canary") or []
              if c.get("predictor", {}).get("name") != revision]
    total = percent + sum(int(c.get("trafficPercent") or 0) for c in others)
    if total > 100:
        raise ValueError(f"{isvcs.where(name)}: canaries would take {total}% (> 100)")
    patched = isvcs.patch(name, {"spec": {"canary": [
        *others, {"trafficPercent": percent, "predictor": canary}]}})
    patched_generation = generation(patched)

    def check(current: dict[str, Any]) -> bool:
        status = canary_status(current, revision)
        return (caught_up_and_ready(current, patched_generation) and status is not None
                and status.get("ready") is True
                and int(status.get("trafficPercent") or 0) == percent)

    return Pending(name, f"canary {revision!r} Ready with {percent}% in "
                         f"status.canaryStatuses", check)


def rollback(isvcs: InferenceServices, name: str, canaries: list[str]) -> Pending:
    """Drop the `canaries` entries from `spec.canary`; wait until their statuses are gone."""
    isvc = isvcs.get(name)
    others = [c for c in isvc["spec"].get("canary") or []
              if c.get("predictor", {}).get("name") not in canaries]
    # null deletes the field in a merge patch; the list is atomic, so it is sent whole
    patched = isvcs.patch(name, {"spec": {"canary": others or None}})
    patched_generation = generation(patched)

    def check(current: dict[str, Any]) -> bool:
        return (caught_up_and_ready(current, patched_generation)
                and all(canary_status(current, c) is None for c in canaries))

    return Pending(name, f"canary {', '.join(canaries)} gone from status.canaryStatuses", check)

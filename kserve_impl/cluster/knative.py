"""Knative mode (legacy name Serverless): a canary is a new Knative revision of the predictor.

One merge patch sets the new env and `spec.predictor.canaryTrafficPercent`; Knative makes a new
revision and KServe sends `percent` to it, the rest to the last revision that had 100%
(`latestRolledoutRevision`). A rollback pins `canaryTrafficPercent: 0`, which sends 100% back to
that revision (the new spec stays, as KServe's pinned-rollout sample does).
"""

from __future__ import annotations

from typing import Any

from kserve_impl.cluster.api import InferenceServices, Pending
from kserve_impl.cluster.env import with_env
from kserve_impl.cluster.status import (
    caught_up_and_ready,
    generation,
    predictor_status,
    traffic_percent,
)


def refuse_promotion(name: str, percent: int) -> None:
    """KServe reads canaryTrafficPercent 100 as a promotion: the new revision becomes the
    rolled-out one, and 0 afterwards no longer reaches the old one, so nothing is left to roll
    back to."""
    if percent == 100:
        raise ValueError(f"{name}: in Knative mode canaryTrafficPercent 100 promotes the new "
                         "revision; roll out a canary at 1..99 to keep a rollback")


def stable_revision(isvc: dict[str, Any]) -> str | None:
    """The revision a pin sends 100% back to: the last one that had 100% of the traffic."""
    status = predictor_status(isvc)
    return status.get("latestRolledoutRevision") or status.get("latestReadyRevision")


def rollout(isvcs: InferenceServices, isvc: dict[str, Any], env: dict[str, str],
            percent: int) -> Pending:
    """Patch in the new env and `canaryTrafficPercent`; wait for a new Ready revision with
    `percent`% of the traffic."""
    name = isvc["metadata"]["name"]
    predictor = isvc["spec"]["predictor"]
    containers = with_env(predictor.get("containers") or [], env)
    old_ready = predictor_status(isvc).get("latestReadyRevision")
    new_spec = containers != predictor.get("containers")  # else Knative makes no revision
    patched = isvcs.patch(name, {"spec": {"predictor": {
        "canaryTrafficPercent": percent, "containers": containers}}})
    patched_generation = generation(patched)

    def check(current: dict[str, Any]) -> bool:
        status = predictor_status(current)
        latest = status.get("latestReadyRevision")
        return (caught_up_and_ready(current, patched_generation) and bool(latest)
                and latest == status.get("latestCreatedRevision")
                and (not new_spec or latest != old_ready)
                and traffic_percent(status, latest) == percent)

    return Pending(name, f"a new Ready revision with {percent}% of the traffic "
                         f"(Knative canary)", check)


def rollback(isvcs: InferenceServices, name: str, previous: str | None,
             canaries: list[str]) -> Pending:
    """Pin `canaryTrafficPercent: 0`; wait for 100% on `previous` and none on `canaries`."""
    patched = isvcs.patch(name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    patched_generation = generation(patched)

    def check(current: dict[str, Any]) -> bool:
        status = predictor_status(current)
        back = (traffic_percent(status, previous) == 100 if previous else
                sum(int(t.get("percent") or 0) for t in status.get("traffic") or []) == 100)
        return (caught_up_and_ready(current, patched_generation) and back
                and all(traffic_percent(status, c) == 0 for c in canaries))

    target = previous or "the previous revision"
    return Pending(name, f"100% of the traffic on {target} (Knative pin)", check)

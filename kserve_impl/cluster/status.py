"""Reading an InferenceService object: its deployment mode and what its status says.

The status fields are KServe's (`ComponentStatusSpec` under `status.components.predictor`,
`status.canaryStatuses` for Standard-mode canaries, kserve.md 4.4). Every reader takes the ISVC
as the API returned it (a dict) and tolerates missing fields: a fresh object has no status yet.
"""

from __future__ import annotations

from typing import Any

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KNATIVE, STANDARD = "Knative", "Standard"
# KServe's ParseDeploymentMode: the legacy names still accepted in the annotation.
_MODE_NAMES = {"knative": KNATIVE, "serverless": KNATIVE,
               "standard": STANDARD, "rawdeployment": STANDARD}


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


def generation(isvc: dict[str, Any]) -> int:
    return int(isvc.get("metadata", {}).get("generation") or 0)


def observed_generation(isvc: dict[str, Any]) -> int:
    return int(isvc.get("status", {}).get("observedGeneration") or 0)


def is_ready(isvc: dict[str, Any]) -> bool:
    conditions = isvc.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def caught_up_and_ready(isvc: dict[str, Any], patched_generation: int) -> bool:
    """The controller has seen the patch (`observedGeneration`) and the ISVC is Ready."""
    return observed_generation(isvc) >= patched_generation and is_ready(isvc)


def predictor_status(isvc: dict[str, Any]) -> dict[str, Any]:
    return (isvc.get("status", {}).get("components") or {}).get("predictor") or {}


def traffic_percent(predictor: dict[str, Any], revision: str | None) -> int:
    """Percent of the predictor's traffic on `revision` (Knative's route status)."""
    return sum(int(t.get("percent") or 0) for t in predictor.get("traffic") or []
               if revision and t.get("revisionName") == revision)


def canary_status(isvc: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The Standard-mode canary `name`'s entry in `status.canaryStatuses`, if any."""
    statuses = isvc.get("status", {}).get("canaryStatuses") or []
    return next((s for s in statuses if s.get("name") == name), None)


def status_summary(isvc: dict[str, Any]) -> str:
    """What the status said, short, for a timeout's message."""
    status = isvc.get("status", {})
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    parts = [f"generation {generation(isvc)} observed {observed_generation(isvc)}",
             f"Ready={ready.get('status', 'unknown')}"
             + (f" ({ready.get('message') or ready.get('reason')})"
                if ready.get("message") or ready.get("reason") else "")]
    predictor = predictor_status(isvc)
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

"""What an experiment asks of a running stack: roll a revision out and back, kill a replica, and
say how many replicas run. One protocol, implemented once per stack, side by side:

- `kserve_impl.rollout.KServeControl`: local mode. A new revision of an InferenceService is a
  second server process started with the changed settings; the graph runner splits that
  service's traffic between the two as Knative does for `canaryTrafficPercent` (0 = roll back).
  A killed server is restarted by the local supervisor, as the kubelet restarts a pod.
- `rayserve_impl.rollout.RayControl`: `serve deploy` of a changed config (in place through
  `user_config`, or a replica-restarting change of the application's args), and of the
  original config to roll back. A killed replica is replaced by Serve's controller.

Every method blocks until what it did has taken effect (or raises), and returns a small dict
for the experiment's event log; the experiment runner stamps wall-clock times around the call.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from shared_pipeline.revision import RevisionChange

ChangeMode = Literal["canary", "inplace", "restart"]


class StackControl(Protocol):
    """The operations an experiment performs on one running stack."""

    #: the modes `rollout` accepts on this stack (KServe: canary; Ray: inplace, restart)
    modes: tuple[ChangeMode, ...]

    def rollout(self, change: RevisionChange, mode: ChangeMode, percent: int) -> dict[str, Any]:
        """Roll out `change` as a new revision and return once it takes traffic.

        `percent` is the share of traffic it gets where the stack can split (KServe canary);
        Ray Serve cannot split one application's traffic between revisions, so it is 100 there
        and the result says so. Returns at least {"revision": <the new revision's name>,
        "percent": <effective percent>, "detail": <what was done, for the log>}.
        """
        ...

    def rollback(self) -> dict[str, Any]:
        """Send all traffic back to the original revision; return once that is in effect."""
        ...

    def kill(self, target: str) -> dict[str, Any]:
        """SIGKILL the process serving `target` (an InferenceService / deployment name, e.g.
        `postprocessor`, `generator-small`) as a node or pod failure would; return at once
        with {"target", "pid"}. Recovery is the stack's own job and is measured, not awaited."""
        ...

    def replicas(self) -> dict[str, int]:
        """Name -> replicas (servers) running and ready now, new revisions included (KServe
        canary servers appear as `<name>@<revision>`). Cheap: called about once a second."""
        ...

    def metrics_urls(self) -> list[str]:
        """Every /metrics endpoint to sample now (grows while a canary runs)."""
        ...

    def close(self) -> None:
        """Stop whatever the control started (canary servers); the stack itself stays up."""
        ...

"""The rollback experiment on a real cluster: `ClusterControl`, a `StackControl` for the
InferenceServices of `manifests/kserve/`, driven through the Kubernetes API.

A rollout changes the settings of a running revision (`RevisionChange`), so the new revision is
the same image with `TWINSERVE_*` variables on its `kserve-container`. How traffic moves depends
on each ISVC's deployment mode (kserve.md 4.4), one module each:

- `env.py`: a change as container env variables, and the new revision's name;
- `status.py`: reading an ISVC: its deployment mode, readiness, traffic and canary statuses;
- `api.py`: get / merge-patch / list ISVCs, and waiting on their status;
- `knative.py`: Knative mode: `canaryTrafficPercent`, rolled back by pinning it to 0;
- `standard.py`: Standard mode: a named `spec.canary` entry, rolled back by removing it;
- `pods.py`: Ready pods, and which revision (stable or canary) each one runs;
- `control.py`: `ClusterControl`: rollout, rollback, kill and replicas over the above.
"""

from kserve_impl.cluster.control import ClusterControl

__all__ = ["ClusterControl"]

"""`twinserve experiment ... --stack kserve --cluster [--context CTX] [--namespace NS] --url URL`:
the experiments against a deployment, with `kserve_impl.cluster.ClusterControl` in place of the
local control.

The load goes to `--url` (the InferenceGraph's or the orchestrator's ingress URL); rollouts,
rollbacks, kills and replica counts go through the Kubernetes API of the kubeconfig context
(`KUBECONFIG` or ~/.kube/config; `--context`, else the current one; `--namespace`, else the
context's). Ray Serve on a cluster would roll out by upgrading the RayService through the
Kubernetes API: not implemented, and refused by name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from loadtests.remote import RemoteTarget, attach
from loadtests.stacks import StackHandle
from shared_pipeline.control import StackControl

CLUSTER_STACKS = ("kserve",)


@contextlib.contextmanager
def cluster_stack(target: RemoteTarget, *, context: str | None = None,
                  namespace: str | None = None, timeout_s: float = 900.0
                  ) -> Iterator[tuple[StackHandle, StackControl]]:
    """The handle of the deployment at `target.url` and a `ClusterControl` on its namespace."""
    if target.name not in CLUSTER_STACKS:
        raise ValueError(f"--cluster drives KServe's InferenceServices only, not "
                         f"{target.name!r}: a RayService upgrade through the Kubernetes API "
                         "is not implemented (run Ray experiments locally)")
    from kserve_impl.cluster import ClusterControl

    # KUBECONFIG read now: the kubernetes client reads it once, when first imported
    control = ClusterControl.from_kubeconfig(namespace, context=context, timeout_s=timeout_s,
                                             config_file=os.environ.get("KUBECONFIG"))
    with attach(target) as handle:
        handle.notes.append(f"experiments drove the InferenceServices of namespace "
                            f"{control.namespace} through the Kubernetes API "
                            f"(context {context or 'current'})")
        try:
            yield handle, control
        finally:
            control.close()

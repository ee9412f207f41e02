"""Which pipeline stages of this Serve application can take requests now (`GET /health`).

Serve's controller knows each deployment's replicas; a stage is ready while at least one of its
replicas is RUNNING (a rolling update keeps the old ones running, so it stays ready). Asked of
the controller through `serve.status()`, the same source as `serve status` on the command line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ray import serve
from ray.serve._private.common import ReplicaState

from shared_pipeline.endpoints import STAGE_OF_SERVICE


def readiness_of(deployments: Mapping[str, object]) -> dict[str, str | None]:
    """stage -> None when every deployment of it has a running replica, else why not."""
    out: dict[str, str | None] = {}
    for name, stage in STAGE_OF_SERVICE.items():
        overview = deployments.get(name)
        if overview is None:
            why = f"deployment {name} is not deployed"
        elif overview.replica_states.get(ReplicaState.RUNNING, 0) > 0:
            why = None
        else:
            why = f"deployment {name} is {overview.status.value}: {overview.message}".rstrip(": ")
        out[stage] = out.get(stage) or why
    return out


async def stage_readiness() -> dict[str, str | None]:
    """This application's readiness by stage (called inside a replica of it)."""
    app_name = serve.get_replica_context().app_name
    status = await asyncio.to_thread(serve.status)  # a blocking call to the controller
    app = status.applications.get(app_name)
    return readiness_of(app.deployments if app is not None else {})

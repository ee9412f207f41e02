"""A local InferenceGraph router: `manifests/kserve/inferencegraph.yaml` executed the way KServe's
router pod executes it on a cluster, so local and cluster runs read the same manifest.

- `spec.py`: the manifest, parsed and checked (Sequence and Switch nodes, steps, timeouts);
- `router.py`: `GraphRunner`, the router's semantics: Sequence with `$response`, Switch on GJSON
  conditions (404 when nothing matches), Hard/Soft dependency, step timeouts, header propagation;
- `traffic.py`: the local stand-in for Knative's per-call canary split (`/local/traffic`);
- `app.py`: the HTTP surface, and the process entry `python -m kserve_impl.graph`.
"""

from kserve_impl.graph.app import build_app
from kserve_impl.graph.router import NO_ROUTE_MATCHED, ROUTER_ERROR, GraphRunner, RoutingError
from kserve_impl.graph.spec import GraphSpec, load_graph
from kserve_impl.graph.traffic import TRAFFIC_PATH

__all__ = ["NO_ROUTE_MATCHED", "ROUTER_ERROR", "TRAFFIC_PATH", "GraphRunner", "GraphSpec",
           "RoutingError", "build_app", "load_graph"]

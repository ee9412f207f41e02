"""The parts of an InferenceGraph manifest the router reads, parsed and checked at load.

The router types run here are the ones `manifests/kserve/inferencegraph.yaml` uses, Sequence and
Switch; a graph with another type (Splitter, Ensemble) or a Switch condition outside the GJSON
form `kserve_impl.gjson` evaluates is refused when it is loaded, naming the node and step, rather
than failing each request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kserve_impl import gjson

SEQUENCE, SWITCH = "Sequence", "Switch"
ROUTER_TYPES = (SEQUENCE, SWITCH)


@dataclass(frozen=True)
class InferenceStep:
    """One step of a node: where it goes (a service, a URL or a node) and how."""

    name: str = ""
    service_name: str = ""
    service_url: str = ""
    node_name: str = ""
    data: str = ""  # only the literal "$response" is interpreted
    condition: str = ""
    dependency: str = "Soft"
    map_predictions_to_instances: bool = False

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> InferenceStep:
        targets = [k for k in ("serviceName", "serviceUrl", "nodeName") if spec.get(k)]
        if len(targets) != 1:
            raise ValueError(f"step {spec.get('name', '?')!r} needs exactly one of serviceName, "
                             f"serviceUrl, nodeName; has {targets}")
        return cls(name=spec.get("name", ""), service_name=spec.get("serviceName", ""),
                   service_url=spec.get("serviceUrl", ""), node_name=spec.get("nodeName", ""),
                   data=spec.get("data", ""), condition=spec.get("condition", ""),
                   dependency=spec.get("dependency", "Soft"),
                   map_predictions_to_instances=bool(spec.get("mapPredictionsToInstances")))


@dataclass(frozen=True)
class RouterNode:
    router_type: str
    steps: tuple[InferenceStep, ...]


@dataclass(frozen=True)
class GraphSpec:
    """The parts of an InferenceGraph `spec` the router reads."""

    name: str
    nodes: dict[str, RouterNode]
    service_client_timeout_s: float | None = None
    router_timeouts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> GraphSpec:
        if manifest.get("kind") != "InferenceGraph":
            raise ValueError(f"expected kind InferenceGraph, got {manifest.get('kind')!r}")
        spec = manifest["spec"]
        nodes = {name: RouterNode(node["routerType"],
                                  tuple(InferenceStep.from_spec(s) for s in node.get("steps", [])))
                 for name, node in spec["nodes"].items()}
        if "root" not in nodes:
            raise ValueError("an InferenceGraph needs a node named 'root'")
        for name, node in nodes.items():
            _check_node(name, node, nodes)
        timeouts = spec.get("routerTimeouts") or {}
        client = timeouts.get("serviceClient")
        return cls(name=manifest["metadata"]["name"], nodes=nodes,
                   service_client_timeout_s=float(client) if client else None,
                   router_timeouts=dict(timeouts))

    def service_names(self) -> set[str]:
        return {s.service_name for n in self.nodes.values() for s in n.steps if s.service_name}


def _check_node(name: str, node: RouterNode, nodes: dict[str, RouterNode]) -> None:
    if node.router_type not in ROUTER_TYPES:
        raise ValueError(f"node {name!r}: routerType {node.router_type!r} is not run here "
                         f"(the manifests use {' and '.join(ROUTER_TYPES)})")
    for step in node.steps:
        if step.node_name and step.node_name not in nodes:
            raise ValueError(f"node {name!r} step {step.name!r} names unknown node "
                             f"{step.node_name!r}")
        if step.condition:
            try:
                gjson.parse(step.condition)
            except gjson.UnsupportedPath as exc:
                raise ValueError(f"node {name!r} step {step.name!r}: {exc}") from None


def load_graph(path: Path) -> GraphSpec:
    """The InferenceGraph in a (possibly multi-document) YAML file."""
    with Path(path).open(encoding="utf-8") as fh:
        for doc in yaml.safe_load_all(fh):
            if doc and doc.get("kind") == "InferenceGraph":
                return GraphSpec.from_manifest(doc)
    raise ValueError(f"{path} holds no InferenceGraph")

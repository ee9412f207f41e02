"""Reduce a Prometheus exposition to the shape of its metric families, to compare two stacks.

A family's shape is its type, its label names and (histograms) its bucket bounds: what a
dashboard or a query depends on. Values are not compared, nor labels a serving layer adds on its
own (Ray adds its node/worker/session labels and Serve its deployment/replica/application ones).
Reusable for any pair of expositions (`families(text, prefix="ray_")`).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# Labels Ray's exporter or Serve add to every application metric; not part of the contract.
RAY_LABELS = frozenset({
    "Component", "NodeAddress", "SessionName", "Version", "WorkerId", "JobId", "ReplicaId",
    "deployment", "replica", "application", "route", "otel_scope_name", "otel_scope_version",
    "otel_scope_schema_url",
})
# Sample-level labels that describe the series kind, not the family.
SAMPLE_LABELS = frozenset({"le", "quantile"})


@dataclass(frozen=True)
class FamilyShape:
    type: str
    labels: frozenset[str]
    buckets: tuple[float, ...] | None = None


def families(text: str, *, prefix: str = "", only: str = "pipeline_",
             ignore_labels: frozenset[str] = RAY_LABELS) -> dict[str, FamilyShape]:
    """{family name: shape} for families named `prefix + only...`, with `prefix` stripped.

    Family names follow prometheus_client's parser: a counter's family has no `_total`. The
    `<name>_created` gauges prometheus_client writes beside counters and histograms are skipped:
    they are a client-library detail (Ray does not write them), not part of a contract.
    """
    out: dict[str, FamilyShape] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(prefix + only) or family.name.endswith("_created"):
            continue
        name = family.name[len(prefix):]
        labels: set[str] = set()
        bounds: set[float] = set()
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels |= set(sample.labels) - SAMPLE_LABELS - ignore_labels
            if sample.name.endswith("_bucket"):
                bounds.add(float(sample.labels["le"]))
        buckets = tuple(sorted(bounds)) if family.type == "histogram" else None
        out[name] = FamilyShape(family.type, frozenset(labels), buckets)
    return out

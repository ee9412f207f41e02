"""Which figures come from an emulated part, so the report marks them.

Locally some of what a cluster does is done by this project's own code: the Python graph runner
executes the InferenceGraph manifest in place of KServe's router, the local canary split stands
in for Knative's (or KServe Standard mode's) traffic split, and a local supervisor restarts a
killed model server in place of a Kubernetes controller. A KServe row measured that way carries
`MARK` in every report table and a footnote naming the parts; a run against a deployment
(`--url`) or a Ray Serve row (a real Ray cluster, on loopback) carries none.
"""

from __future__ import annotations

from typing import Any

MARK = "†"
GRAPH = ("the InferenceGraph executed by the local Python graph runner (kserve_impl/graph), "
         "not KServe's router")
CANARY = ("the canary traffic split done locally by the entry (the graph runner, or the "
          "orchestrator through its stage client), not Knative or KServe")
SUPERVISOR = "the killed model server restarted by the local supervisor, not Kubernetes"

# stack -> parts emulated in a benchmark; experiments add theirs (below)
BENCH: dict[str, tuple[str, ...]] = {"kserve": (GRAPH,), "kserve-orchestrated": ()}
EXPERIMENT: dict[str, tuple[str, ...]] = {"rollback": (CANARY,), "kill-replica": (SUPERVISOR,)}


def emulated_parts(stack: str, remote: bool, experiment: str | None = None) -> list[str]:
    """What stood in for a cluster's part when `stack` was measured (none on a deployment)."""
    if remote or stack not in BENCH:
        return []
    return [*BENCH[stack], *(EXPERIMENT.get(experiment, ()) if experiment else ())]


def marked(name: str, result: dict[str, Any]) -> str:
    return f"{name} {MARK}" if result.get("emulated") else name


def mark_emulated(table: tuple[list[str], list[list[Any]]],
                  per_stack: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """`table` with `MARK` after the stack name (first cell) of every emulated stack's row."""
    header, rows = table
    if not header or header[0] != "stack":
        return table
    return header, [[marked(row[0], per_stack[row[0]]), *row[1:]]
                    if row and row[0] in per_stack else row for row in rows]


def emulated_notes(per_stack: dict[str, Any]) -> list[str]:
    """One footnote per stack with emulated parts."""
    return [f"{MARK} {stack}: measured locally with emulated parts: "
            + "; ".join(r["emulated"]) + ". On a cluster these are KServe's and Kubernetes' "
            "own (run `twinserve bench --url` against the deployment)."
            for stack, r in per_stack.items() if r.get("emulated")]

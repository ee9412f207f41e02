"""The seed page's five dimensions, the rollback unit per stack and what on-call can see.

Each fit row reads one inventory field and points to a platform ("kserve" covers both KServe
topologies) or to neither; the words say why, after the seed page's decision table.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.decision.evidence import Evidence, Figure, Missing, Report
from loadtests.decision.inventory import Inventory
from loadtests.decision.requirements import rollback_mode

PLATFORMS = {"kserve": "KServe", "rayserve": "Ray Serve"}


def platform(stack: str) -> str:
    return "kserve" if stack.startswith("kserve") else "rayserve"


@dataclass
class FitRow:
    dimension: str
    field: str  # inventory key
    value: str
    points_to: str | None  # "kserve", "rayserve" or None (either)
    why: str


# (dimension, field) -> value -> (points_to, why); the why paraphrases the seed page's table.
FIT: dict[tuple[str, str], dict[str, tuple[str | None, str]]] = {
    ("primary contract", "autoscaling_owner"): {
        "gateway": ("kserve", "scaling is set at the gateway: Kubernetes resources and platform "
                              "policy are the contract"),
        "cluster": ("kserve", "the cluster (HPA, node pools) owns scaling: a Kubernetes resource "
                              "is the contract"),
        "serving-layer": (None, "both serving layers autoscale themselves (Knative KPA via the "
                                "InferenceService, Serve's autoscaling_config)"),
        "runtime": ("rayserve", "scaling is decided inside the Python runtime: Serve's "
                                "deployment graph and application code are the contract"),
    },
    ("owner", "owner"): {
        "platform-team": ("kserve", "a platform team standardises endpoint lifecycle"),
        "app-team": ("rayserve", "an ML or application team owns graph behaviour"),
    },
    ("serving graph", "graph_complexity"): {
        "single-endpoint": ("kserve", "a repeatable endpoint pattern"),
        "multi-step": ("rayserve", "a custom multi-step pipeline"),
    },
    ("SRE operability", "oncall"): {
        "kubernetes": ("kserve", "on-call operates Kubernetes resources and controller signals"),
        "ray": ("rayserve", "on-call operates a Ray cluster plus graph-level telemetry"),
        "both": (None, "on-call operates both"),
    },
}
# rollout: which platform's rollout handles each unit natively (seed page, "Rollout" row).
UNIT_FIT = {"resource": "kserve", "runtime": None, "model": None, "prompt": "rayserve",
            "graph": "rayserve"}


def fit_rows(inv: Inventory) -> list[FitRow]:
    rows = []
    for (dimension, key), table in FIT.items():
        value = getattr(inv, key)
        points_to, why = table[value]
        rows.append(FitRow(dimension, key, value, points_to, why))
    votes = [UNIT_FIT[u] for u in inv.rollback_unit]
    k, r = votes.count("kserve"), votes.count("rayserve")
    points_to = "kserve" if k > r else "rayserve" if r > k else None
    rows.insert(3, FitRow(
        "rollout", "rollback_unit", ", ".join(inv.rollback_unit), points_to,
        f"of the units named, {k} roll natively as a KServe resource revision (resource) and "
        f"{r} as a Ray Serve deployment change (prompt as user_config, graph code); runtime "
        "and model roll on both"))
    return rows


def fit_platform(rows: list[FitRow]) -> tuple[str | None, dict[str, int]]:
    votes = {p: sum(1 for r in rows if r.points_to == p) for p in PLATFORMS}
    if votes["kserve"] == votes["rayserve"]:
        return None, votes
    return max(votes, key=votes.__getitem__), votes


# ---------------------------------------------------------------- rollback units
MECHANISM = {
    "resource": {"kserve": "edit the InferenceService (resources, min/max replicas): a new "
                           "revision, moved by canaryTrafficPercent",
                 "rayserve": "ray_actor_options in the Serve config: `serve deploy`, replicas "
                             "replaced"},
    "runtime": {"kserve": "ServingRuntime or container image: a new revision behind a canary",
                "rayserve": "runtime_env or image: `serve deploy` replaces replicas (a new "
                            "RayService cluster for an image)"},
    "model": {"kserve": "storageUri of the InferenceService: a new revision behind a canary",
              "rayserve": "model path in the app's args: `serve deploy`, app rebuilt, replicas "
                          "replaced"},
    "prompt": {"kserve": "prompt template in the stage config: a new InferenceService revision "
                         "behind a canary (no in-place change)",
               "rayserve": "user_config in place: reconfigure() on the live replicas, no "
                           "restart"},
    "graph": {"kserve": "InferenceGraph edit (steps, Switch conditions): applied in place, the "
                        "graph has no revisions or canary",
              "kserve-orchestrated": "graph code in the entry InferenceService: a new revision "
                                     "of it behind a canary",
              "rayserve": "graph code: a new app version by `serve deploy`, replicas replaced"},
}
ROLLBACK_FIGURES = ("actions.rollout.detail", "rollout_took_s", "time_to_restore_s",
                    "failed_in_window")


@dataclass
class UnitRow:
    unit: str
    stack: str
    mechanism: str
    mode: str
    measured: dict[str, Evidence]
    caveat: str = ""


def unit_rows(inv: Inventory, report: Report) -> list[UnitRow]:
    rows = []
    for unit in inv.rollback_unit:
        for stack in report.candidates():
            mech = MECHANISM[unit].get(stack) or MECHANISM[unit][platform(stack)]
            mode = rollback_mode(stack, [unit])
            caveat = ""
            if unit == "graph" and stack == "kserve":
                caveat = ("the harness rolls out InferenceService revisions, not InferenceGraph "
                          "edits: the figures are of a canary on a stage service")
            measured = {k: report.experiment_figure("rollback", stack, mode, k)
                        for k in ROLLBACK_FIGURES}
            rows.append(UnitRow(unit, stack, mech, mode, measured, caveat))
    return rows


# ---------------------------------------------------------------- SRE operability
# concern -> (pipeline metric, summary.json fallback key, {stack or platform: what on-call runs})
CONCERNS: dict[str, tuple[str, str | None, dict[str, str]]] = {
    "routing": ("pipeline_hop_seconds", "hop_total_mean_ms", {
        "kserve": "`kubectl get inferencegraph -o yaml` (steps, Switch), `kubectl get isvc` "
                  "(traffic per revision); panels 'Requests/s by tier', 'Hop time'",
        # no InferenceGraph: the entry service's env holds the stage URLs
        "kserve-orchestrated": "`kubectl get isvc` (the entry and each stage, traffic per "
                               "revision), the stage URLs in the entry's env "
                               "(`TWINSERVE_STAGE_URL_*`, `kubectl get isvc pipeline -o "
                               "yaml`); panels 'Requests/s by "
                               "tier', 'Hop time'",
        "rayserve": "`serve status` (application route, deployment status); panels "
                    "'Requests/s by tier', 'Hop time'"}),
    "queueing": ("pipeline_generation_queue_depth", "max_generator_queue_depth", {
        "kserve": "panel 'Generator queue depth' (the batcher's queue); Knative queue-proxy "
                  "concurrency on a cluster",
        "rayserve": "panel 'Generator queue depth'; `ray_serve_deployment_queued_queries`, "
                    "`vllm:num_requests_waiting`"}),
    "replica state": ("pipeline_revision_info", None, {
        "kserve": "`kubectl get isvc` (READY, latest ready revision, canary %), `kubectl get "
                  "pods -l serving.kserve.io/inferenceservice=NAME`; panel 'Revision per stage'",
        "rayserve": "`serve status` (replica states), `ray list actors`; panel 'Revision per "
                    "stage'"}),
    "runtime health": ("pipeline_requests_total", "engine_detected", {
        "kserve": "`kubectl describe isvc` (conditions), `/v2/health/ready` per stage; panels "
                  "'Requests/s by status', 'Error ratio'",
        "rayserve": "`serve status` (HEALTHY/UNHEALTHY), `ray status`, vLLM's `vllm:*` metrics; "
                    "panels 'Requests/s by status', 'Error ratio'"}),
}


@dataclass
class SreRow:
    concern: str
    stack: str
    metric: str
    command: str
    data: Evidence  # Figure(True/False or the fallback figure) or Missing


def _returned(report: Report, concern: str, stack: str) -> Evidence:
    metric, fallback, _ = CONCERNS[concern]
    if report.promql is not None:
        answer = report.returned_data(metric, stack)
        if isinstance(answer, Figure):
            return answer
    if concern == "replica state":
        for kind in ("rollback", "kill-replica", "overload"):
            ev = report.experiment_figure(kind, stack, None, "replicas_at_start")
            if isinstance(ev, Figure):
                return Figure(ev.value, ev.source, "replicas the stack's control reported "
                                                   "ready when an experiment started")
        return Missing(f"{stack} replica state", "no PromQL answer for pipeline_revision_info "
                       "and no experiment recorded replicas")
    ev = report.stack_figure(stack, fallback)
    if isinstance(ev, Missing):
        return ev
    note = ("the engine's own metrics answered on the stack's /metrics" if concern ==
            "runtime health" else f"computed from the {metric} answers; raw/promql.json is "
            "not in the report")
    return Figure(ev.value, ev.source, note)


def sre_rows(report: Report) -> list[SreRow]:
    rows = []
    for concern, (metric, _, commands) in CONCERNS.items():
        for stack in report.candidates():
            rows.append(SreRow(concern, stack, metric,
                               commands.get(stack) or commands[platform(stack)],
                               _returned(report, concern, stack)))
    return rows


def has_data(row: SreRow) -> bool:
    ev = row.data
    return isinstance(ev, Figure) and ev.value is not False and ev.value is not None

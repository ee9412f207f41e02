"""The inventory's requirements checked against each candidate's measured figures.

One row per requirement present, one cell per candidate: the figure (with its key path), and
pass / fail / missing. A candidate with a measured failure is rejected on that number; one
with no failure but a missing figure blocks the decision (never a silent pick).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtests.decision.evidence import Evidence, Figure, Missing, Report
from loadtests.decision.inventory import Inventory

# Ray Serve changes that replace replicas (a new app build, actor options, runtime env); only a
# `user_config` change (the prompt, stage parameters) is applied in place by reconfigure().
RAY_RESTART_UNITS = frozenset({"resource", "runtime", "model", "graph"})


def rollback_mode(stack: str, units: list[str]) -> str:
    """The rollout mode a stack's rollback experiment must have used for these units."""
    if stack.startswith("kserve"):
        return "canary"
    return "restart" if RAY_RESTART_UNITS & set(units) else "inplace"


@dataclass
class Cell:
    evidence: Evidence
    passed: bool | None  # None: the figure is missing


@dataclass
class Row:
    requirement: str  # inventory key under requirements
    limit: object
    measure: str  # what is compared, in words
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"inventory.requirements.{self.requirement}"


def _at_most(evidence: Evidence, limit: float) -> Cell:
    if isinstance(evidence, Missing):
        return Cell(evidence, None)
    return Cell(evidence, evidence.value <= limit)


def check_requirements(inventory: Inventory, report: Report) -> list[Row]:
    req = inventory.requirements
    units = inventory.rollback_unit
    rows: list[Row] = []
    candidates = report.candidates()
    if req.streaming is not None:
        row = Row("streaming", req.streaming, "the stack streams tokens to the client")
        for s in candidates:
            ev = report.stack_figure(s, "streams")
            row.cells[s] = Cell(ev, None) if isinstance(ev, Missing) else \
                Cell(ev, bool(ev.value) or not req.streaming)
        rows.append(row)
    for key, metric in (("ttft_p95_ms", "ttft"), ("e2e_p95_ms", "e2e")):
        limit = getattr(req, key)
        if limit is None:
            continue
        row = Row(key, limit, f"client {metric.upper() if metric == 'ttft' else metric} p95 "
                              f"at {req.load}, ms, at most the limit")
        for s in candidates:
            row.cells[s] = _at_most(report.latency_p95(s, metric, req.load), limit)
        rows.append(row)
    for key, figure, words in (
            ("time_to_restore_s", "time_to_restore_s", "rollback experiment: seconds from the "
             "rollback until every answer is from the good revision again"),
            ("max_failed_during_rollback", "failed_in_window", "rollback experiment: failed "
             "requests between rollout and restore")):
        limit = getattr(req, key)
        if limit is None:
            continue
        row = Row(key, limit, f"{words}, at most the limit (mode per stack for the units "
                              f"{', '.join(units)})")
        for s in candidates:
            mode = rollback_mode(s, units)
            row.cells[s] = _at_most(report.experiment_figure("rollback", s, mode, figure), limit)
        rows.append(row)
    if req.max_overhead_ms is not None:
        row = Row("max_overhead_ms", req.max_overhead_ms, "e2e p50 of the stack minus the "
                  "in-process reference on the same engine, ms, at most the limit")
        for s in candidates:
            row.cells[s] = _at_most(report.overhead(s), req.max_overhead_ms)
        rows.append(row)
    return rows


def failures(rows: list[Row], stack: str) -> list[str]:
    """Each failed requirement of `stack`, with its number and key path."""
    out = []
    for row in rows:
        cell = row.cells.get(stack)
        if cell is not None and cell.passed is False:
            ev: Figure = cell.evidence  # type: ignore[assignment]
            out.append(f"{row.requirement}: measured {fmt(ev.value)} ({ev.source}) against "
                       f"{fmt(row.limit)} ({row.source})")
    return out


def missing(rows: list[Row], stack: str) -> list[Missing]:
    return [c.evidence for r in rows if (c := r.cells.get(stack)) is not None
            and c.passed is None]


def fmt(value: object) -> str:
    """How a number is written in the record: exact enough to find it in the source file."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)

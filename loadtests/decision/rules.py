"""The decision: requirements first, then the fit; the four checks of the seed page.

Among candidates that pass every requirement, the one the fit's platform points to wins;
requirements always beat the fit, and the record says so when they disagree. Missing
evidence for any candidate not already rejected on a measured number means no decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtests.decision import fit as fitting
from loadtests.decision import requirements as reqs
from loadtests.decision.evidence import Report
from loadtests.decision.inventory import Inventory

# What each stack's figures ran on here, said beside the numbers (emulated parts named).
RUNS_ON = {
    "kserve": "stage InferenceServices as local kserve.ModelServer processes (the pods' "
              "command); the InferenceGraph executed by the local Python graph runner "
              "(kserve_impl), not KServe's router; canary traffic split by that runner, not "
              "Knative",
    "kserve-orchestrated": "stage InferenceServices and the orchestrating entry service as "
                           "local kserve.ModelServer processes; canary split locally, not by "
                           "Knative",
    "rayserve": "a local Ray cluster (`ray start --head` on loopback) running the Serve config "
                "the RayService ships; rollouts by `serve deploy`",
}


@dataclass
class Check:
    name: str
    passed: bool
    reason: str


@dataclass
class Outcome:
    inventory: Inventory
    report: Report
    rows: list[reqs.Row]
    fit: list[fitting.FitRow]
    fit_platform: str | None
    votes: dict[str, int]
    units: list[fitting.UnitRow]
    sre: list[fitting.SreRow]
    status: dict[str, str]  # candidate -> pass | fail | missing
    decision: str | None = None
    rejected: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    why: str = ""
    conflict: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def summary(self) -> str:
        route = self.inventory.route
        if self.decision is None:
            return f"{route}: no decision: {self.why}"
        others = ", ".join(r["stack"] for r in self.rejected) or "none"
        failed = [c.name for c in self.checks if not c.passed]
        tail = f"; checks failed: {', '.join(failed)}" if failed else "; all four checks pass"
        return f"{route}: {self.decision} (rejected: {others}){tail}"


def _status(rows: list[reqs.Row], stack: str) -> str:
    if reqs.failures(rows, stack):
        return "fail"
    return "missing" if reqs.missing(rows, stack) else "pass"


def decide(inventory: Inventory, report: Report) -> Outcome:
    rows = reqs.check_requirements(inventory, report)
    fit_rows = fitting.fit_rows(inventory)
    fit_platform, votes = fitting.fit_platform(fit_rows)
    out = Outcome(inventory, report, rows, fit_rows, fit_platform, votes,
                  fitting.unit_rows(inventory, report), fitting.sre_rows(report),
                  {s: _status(rows, s) for s in report.candidates()})
    out.missing = [str(m) for m in report.not_run()]
    for stack, status in out.status.items():
        if status == "missing":
            out.missing += [str(m) for m in reqs.missing(rows, stack)]
    passing = [s for s, st in out.status.items() if st == "pass"]
    if out.missing:
        out.why = "the report lacks evidence a requirement needs (see missing)"
    elif not passing:
        out.why = "no candidate meets every requirement"
    else:
        preferred = [s for s in passing if fitting.platform(s) == fit_platform]
        if len(passing) == 1 or len({fitting.platform(s) for s in passing}) == 1:
            out.decision = _within_platform(passing, inventory)
        elif preferred:
            out.decision = _within_platform(preferred, inventory)
        else:
            out.why = (f"candidates {', '.join(passing)} all pass and the fit is a tie "
                       f"({_votes(votes)}): change an inventory answer that decides")
        if out.decision and fit_platform and fitting.platform(out.decision) != fit_platform:
            out.conflict = (f"the fit points to {fitting.PLATFORMS[fit_platform]} "
                            f"({_votes(votes)}) but no {fitting.PLATFORMS[fit_platform]} "
                            "candidate meets every requirement: the requirements won")
    if out.decision is None and out.missing:
        out.why = "missing evidence: " + "; ".join(out.missing)
    elif out.decision is None:  # every figure any candidate lacks, for the re-run
        out.missing = [str(m) for s in report.candidates() for m in reqs.missing(rows, s)]
    for stack in report.candidates():
        if stack != out.decision:
            out.rejected.append({"stack": stack, "reasons": _reasons(out, stack)})
    out.checks = checks(out)
    return out


def _within_platform(stacks: list[str], inventory: Inventory) -> str:
    """KServe's two topologies: the InferenceGraph (the declarative, Kubernetes-native
    contract) unless only the orchestrating entry service passes (e.g. it streams)."""
    return "kserve" if "kserve" in stacks else stacks[0]


def _votes(votes: dict[str, int]) -> str:
    return ", ".join(f"{fitting.PLATFORMS[p]} {n}" for p, n in votes.items())


def _reasons(out: Outcome, stack: str) -> list[str]:
    reasons = reqs.failures(out.rows, stack)
    if out.status[stack] == "missing":
        reasons += [f"unmeasured: {m}" for m in reqs.missing(out.rows, stack)]
    elif reasons:
        reasons += [f"also unmeasured: {m}" for m in reqs.missing(out.rows, stack)]
    if out.decision and not reasons:
        if fitting.platform(stack) == fitting.platform(out.decision):
            reasons.append(f"passes every requirement; within KServe the InferenceGraph "
                           f"topology ({out.decision}) is preferred as the declarative contract")
        else:
            reasons += [f"fit: {r.dimension} ({r.field}: {r.value}) points to "
                        f"{fitting.PLATFORMS[r.points_to]}: {r.why}"
                        for r in out.fit if r.points_to == fitting.platform(out.decision)]
    if not reasons:
        reasons.append(out.why)
    return reasons


def checks(out: Outcome) -> list[Check]:
    inv, chosen = out.inventory, out.decision
    owner = Check("Owner is explicit", True,
                  f"inventory.owner is {inv.owner}; on-call (inventory.oncall) operates "
                  f"{inv.oncall}")
    units = [u for u in out.units if u.stack == chosen]
    unit_check = Check("Rollback unit is explicit", bool(chosen) and bool(units),
                       "no decision: no stack's mechanisms to name" if not chosen else
                       "; ".join(f"{u.unit}: {u.mechanism}" for u in units)
                       + f" (inventory.rollback_unit: {', '.join(inv.rollback_unit)})")
    if not chosen:
        sre = Check("SRE can operate it", False, "no decision: no stack to operate")
    else:
        mine = [r for r in out.sre if r.stack == chosen]
        dark = [r.concern for r in mine if not fitting.has_data(r)]
        team = fitting.platform(chosen)
        matches = inv.oncall == "both" or (inv.oncall == "kubernetes") == (team == "kserve")
        problems = ([f"no data in this run for {', '.join(dark)}"] if dark else []) + (
            [] if matches else [f"inventory.oncall is {inv.oncall}, {chosen} is operated "
                                f"through {fitting.PLATFORMS[team]}"])
        sre = Check("SRE can operate it", not problems, "; ".join(problems) or
                    f"every concern ({', '.join(r.concern for r in mine)}) returned data for "
                    f"{chosen}, and inventory.oncall ({inv.oncall}) operates it")
    alt = Check("Alternative rejected", bool(chosen) and all(r["reasons"] for r in out.rejected)
                and bool(out.rejected),
                "no decision: nothing was chosen over an alternative" if not chosen else
                "; ".join(f"{r['stack']}: {r['reasons'][0]}" for r in out.rejected)
                or "no alternative candidate in the report")
    return [owner, unit_check, sre, alt]

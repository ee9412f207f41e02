"""The decision record on disk: `decision.json` (the data) and Markdown rendered from that
same data by a Jinja2 template, so the two never disagree; plus the section a comparison
report gets (`add_decision_to_report`, idempotent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from loadtests.decision.evidence import Evidence, Figure, Report
from loadtests.decision.fit import platform
from loadtests.decision.inventory import load_inventory
from loadtests.decision.requirements import fmt
from loadtests.decision.rules import RUNS_ON, Outcome, decide
from loadtests.report_sections import replace_section

TEMPLATES = Path(__file__).with_name("templates")
SECTION_START = "<!-- decision:start -->"
SECTION_END = "<!-- decision:end -->"


def _ev(ev: Evidence) -> dict[str, Any]:
    if isinstance(ev, Figure):
        return {"value": ev.value, "source": ev.source, "note": ev.note}
    return {"missing": str(ev)}


def to_json(out: Outcome, inventory_path: Path | None = None) -> dict[str, Any]:
    """Everything the record states, each value with the key path it came from."""
    env = out.report.summary.get("environment") or {}
    return {
        "route": out.inventory.route,
        "inventory_file": str(inventory_path) if inventory_path else None,
        "inventory": out.inventory.model_dump(exclude_none=True),
        "report": str(out.report.dir),
        "summary": out.summary,
        "decision": out.decision,
        "why_no_decision": out.why if out.decision is None else None,
        "conflict": out.conflict or None,
        "fit_agrees": bool(out.decision and out.fit_platform
                           and platform(out.decision) == out.fit_platform),
        "rejected": out.rejected,
        "missing": out.missing,
        "checks": [{"name": c.name, "pass": c.passed, "reason": c.reason} for c in out.checks],
        "candidates": out.status,
        "requirements": [
            {"requirement": r.requirement, "limit": r.limit, "source": r.source,
             "measure": r.measure,
             "results": {s: {**_ev(c.evidence), "pass": c.passed} for s, c in r.cells.items()}}
            for r in out.rows],
        "fit": {"platform": out.fit_platform, "votes": out.votes,
                "rows": [{"dimension": f.dimension, "field": f.field, "value": f.value,
                          "source": f"inventory.{f.field}", "points_to": f.points_to,
                          "why": f.why} for f in out.fit]},
        "rollback_units": [
            {"unit": u.unit, "stack": u.stack, "mechanism": u.mechanism, "mode": u.mode,
             "caveat": u.caveat,
             "figures": {k.rsplit(".", 1)[-1]: _ev(v) for k, v in u.measured.items()}}
            for u in out.units],
        "sre": [{"concern": r.concern, "stack": r.stack, "metric": r.metric,
                 "command": r.command, "data": _ev(r.data)} for r in out.sre],
        "runs_on": {s: RUNS_ON[s] for s in out.status},
        "environment": {"cores": env.get("cores"), "cpu": env.get("cpu"),
                        "date_utc": env.get("date_utc"), "source": "summary.json:environment"},
    }


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = fmt
    env.filters["cell"] = lambda e: (f"missing: {e['missing']}" if "missing" in e else
                                     f"{fmt(e['value'])} (`{e['source']}`)")
    env.filters["verdict"] = lambda p: {True: "pass", False: "FAIL", None: "missing"}[p]
    return env


def render_markdown(data: dict[str, Any]) -> str:
    return _env().get_template("decision.md.j2").render(d=data)


def write_record(inventory_path: Path, report_dir: Path, out: Path | None = None
                 ) -> tuple[Path, dict[str, Any]]:
    """Decide and write `out` (Markdown; default REPORT/decision.md) and decision.json beside
    it. Raises InventoryError / ReportError for an input that cannot be decided on."""
    inventory = load_inventory(inventory_path)
    outcome = decide(inventory, Report(report_dir))
    data = to_json(outcome, inventory_path)
    out = Path(out) if out else Path(report_dir) / "decision.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(data))
    (out.parent / "decision.json").write_text(json.dumps(data, indent=2) + "\n")
    return out, data


def add_decision_to_report(report_dir: Path, inventory_path: Path) -> Path:
    """Write REPORT/decision.md + decision.json and put the decision's section into
    report.md and index.html (replaced on a re-run, never duplicated). Returns decision.md."""
    report_dir = Path(report_dir)
    path, data = write_record(inventory_path, report_dir)
    env = _env()
    md = env.get_template("section.md.j2").render(d=data)
    html = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                       undefined=StrictUndefined).get_template("section.html.j2").render(d=data)
    for name, block, anchor in (("report.md", md, "## Environment"),
                                ("index.html", html, "<h2>Environment</h2>")):
        target = report_dir / name
        if not target.exists():
            continue
        target.write_text(replace_section(
            target.read_text(), f"{SECTION_START}\n{block}\n{SECTION_END}\n", anchor,
            SECTION_START, SECTION_END))
    return path

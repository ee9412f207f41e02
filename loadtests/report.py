"""The comparison report: `index.html` (plots + tables), `report.md` (the same tables),
`summary.json` (headline figures per stack), plots as PNG files under `plots/`.

Tables are built once as rows (loadtests.tables) and rendered by two Jinja2 templates shipped
in loadtests/templates, so the Markdown and the HTML never disagree; the HTML one escapes every
value. Numbers come from `raw/<stack>/result.json`; nothing here measures anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from loadtests.emulation import emulated_notes, mark_emulated
from loadtests.plots import plots
from loadtests.scenarios import WHOLE_SUFFIX, Scenario
from loadtests.tables import (
    Table,
    environment_table,
    failure_table,
    generator_table,
    headline,
    headline_table,
    phase_table,
    stage_table,
    to_markdown,
)

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("loadtests", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined)
TEMPLATES.filters["markdown"] = to_markdown


def differences(per_stack: dict[str, Any], engine_parity: bool,
                heads: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """What the reader must know before comparing the rows: what differs by design (streaming,
    engines, how overhead is taken), so no difference is read as a serving-layer cost by mistake."""
    notes = []
    if "kserve" in per_stack:
        notes.append("KServe through its InferenceGraph does not stream: the router buffers "
                     "every step's answer, so the client asks for the whole answer "
                     "(stream=false). Its end-to-end latency is measured; client TTFT and TPOT "
                     "do not exist for it and are shown as n/a. The generator's own TTFT "
                     "(server side) is still recorded.")
    engines = {s: r["engine"] for s, r in per_stack.items()}
    if len(set(engines.values())) > 1:
        notes.append("Engines differ (" + ", ".join(f"{s}: {e}" for s, e in engines.items())
                     + "): generation time is engine cost as much as serving cost. Run "
                     "`twinserve compare --engine-parity` to put every stack on one engine.")
    elif engine_parity:
        notes.append(f"Engine parity: every stack runs {next(iter(engines.values()))}.")
    detected = {s: r.get("engine_detected") for s, r in per_stack.items()}
    for s, e in detected.items():
        if e and e != engines[s]:
            notes.append(f"{s} was asked to run {engines[s]}, but its metrics show {e}: the "
                         "stack does not honour the engine setting; read its numbers as "
                         f"{e}'s.")
    notes.append("Overhead vs in-process = stack minus the in-process reference at the same "
                 "phase, in the same answer mode: streamed stacks against the streamed "
                 "reference, KServe against the reference answering whole (an extra phase, "
                 f"'<first phase>{WHOLE_SUFFIX}', run for the reference only). It is a "
                 "serving-layer figure only where the engines match.")
    notes.append("Every request generates exactly max_tokens tokens (ignore_eos), so every "
                 "stack does the same generation work.")
    if any((h.get("overhead_e2e_p50_ms_low_load") or 0) < 0 for h in (heads or {}).values()):
        notes.append("A negative overhead means the stack beat the in-process reference: on a "
                     "few CPU cores one process running every stage (one GIL, one torch "
                     "thread pool, one engine for both tiers) is not free either, while a "
                     "stack spreads stages over processes. The stage and hop tables show "
                     "where the time goes.")
    return notes


def write_report(out: Path, scenario: Scenario, per_stack: dict[str, Any], env: dict[str, Any],
                 errors: dict[str, str], engine_parity: bool = False) -> Path:
    """Write summary.json, the plots, report.md and index.html into `out`; returns `out`."""
    reference = per_stack.get("inprocess")
    heads = {s: headline(s, r, scenario, reference) for s, r in per_stack.items()}
    diffs = differences(per_stack, engine_parity, heads) + emulated_notes(per_stack)
    summary = {"scenario": scenario.name, "engine_parity": engine_parity, "stacks": heads,
               "errors": errors, "differences_by_design": diffs, "environment": env,
               "units": {"*_ms*": "milliseconds", "*_rps": "requests/s",
                         "*tokens_per_s": "tokens/s"}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    sections: list[tuple[str, Table]] = [
        ("Headline", headline_table(heads)),
        ("Per phase (client side)", phase_table(per_stack)),
        ("Time inside each stage, ms (server side, pipeline_stage_seconds)",
         stage_table(per_stack, "stage_seconds")),
        ("Hop into each stage, ms: queue + transport (server side, pipeline_hop_seconds)",
         stage_table(per_stack, "hop_seconds")),
        ("Whole request and generator, ms (server side)", generator_table(per_stack)),
        ("Failures by reason", failure_table(per_stack)),
    ]
    sections = [(title, mark_emulated(table, per_stack)) for title, table in sections]
    context = {
        "scenario": scenario, "differences": diffs, "errors": errors, "sections": sections,
        "figures": plots(out, scenario, per_stack) if per_stack else [],
        "environment": environment_table(env),
        "scenario_line": (
            f"`{scenario.name}`: {scenario.description} max_tokens={scenario.max_tokens}, "
            f"warm-up {scenario.warmup_requests} requests, phases: "
            + ", ".join(f"{p.name} ({p.duration_s:g}s)" for p in scenario.phases) + "."),
    }
    for template, name in (("report.md.j2", "report.md"), ("index.html.j2", "index.html")):
        (out / name).write_text(TEMPLATES.get_template(template).render(context))
    return out

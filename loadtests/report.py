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
from loadtests.engine_alone import NAME as ENGINE_ALONE
from loadtests.engine_alone import vllm_server_args
from loadtests.fairness_tables import join_table, queue_notes, queue_table, warmup_table
from loadtests.headline import headline, headline_table
from loadtests.hop_floor import TITLE as FLOOR_TITLE
from loadtests.hop_floor import floor_notes, floor_table, hop_floor, with_floor
from loadtests.plots import plots
from loadtests.references import is_reference
from loadtests.scenarios import WHOLE_SUFFIX, Scenario
from loadtests.tables import (
    Table,
    environment_table,
    failure_table,
    generator_table,
    phase_table,
    stage_table,
    to_markdown,
)
from loadtests.uncertainty import MIN_SAMPLES
from loadtests.vllm_bench_table import TITLE as VLLM_BENCH_TITLE
from loadtests.vllm_bench_table import vllm_bench_notes, vllm_bench_table
from shared_pipeline.config import Settings

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("loadtests", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined)
TEMPLATES.filters["markdown"] = to_markdown
HOP_TITLE = "Hop into each stage, ms: queue + transport (server side, pipeline_hop_seconds)"


def differences(per_stack: dict[str, Any], engine_parity: bool,
                heads: dict[str, dict[str, Any]] | None = None,
                settings: Settings | None = None) -> list[str]:
    """What the reader must know before comparing the rows: what differs by design (streaming,
    engines, how overhead is taken), so no difference is read as a serving-layer cost by mistake."""
    notes = []
    if "kserve" in per_stack:
        notes.append("KServe through its InferenceGraph does not stream: the router buffers "
                     "every step's answer, so the client asks for the whole answer "
                     "(stream=false). Its end-to-end latency is measured; client TTFT and TPOT "
                     "do not exist for it and are shown as n/a. The generator's own TTFT "
                     "(server side) is still recorded.")
    if "kserve-orchestrated" in per_stack:
        notes.append("kserve-orchestrated is KServe's second topology: an entry "
                     "InferenceService calls the same stage InferenceServices itself and "
                     "streams, so it has client TTFT and TPOT. Its servers carry the "
                     "contract's stack=\"kserve\" label; locally its server-side figures are the "
                     "series of its own scrape job (job=\"kserve-orchestrated\"), never the "
                     "graph topology's.")
    stacks = {s: r for s, r in per_stack.items() if not is_reference(s) and s != ENGINE_ALONE}
    engines = {s: r["engine"] for s, r in per_stack.items() if s != ENGINE_ALONE}
    if len(set(engines.values())) > 1:
        notes.append("Engines differ (" + ", ".join(f"{s}: {e}" for s, e in engines.items())
                     + "): generation time is engine cost as much as serving cost, so the "
                     "in-process reference ran once per engine and each overhead is against "
                     "the reference on the stack's own engine. Run `twinserve compare "
                     "--engine-parity` to put every stack on one engine.")
    elif engine_parity:
        notes.append(f"Engine parity: every stack runs {next(iter(engines.values()))}.")
    detected = {s: r.get("engine_detected") for s, r in per_stack.items()}
    for s, e in detected.items():
        if e and s in engines and e != engines[s]:
            notes.append(f"{s} was asked to run {engines[s]}, but its metrics show {e}: the "
                         "stack does not honour the engine setting; read its numbers as "
                         f"{e}'s.")
    for s, h in (heads or {}).items():
        if s in stacks and h.get("overhead_reference"):
            notes.append(f"{s}'s overhead is against `{h['overhead_reference']}` "
                         f"({h['overhead_reference_engine']}), phase "
                         f"{h.get('overhead_reference_phase') or 'n/a'}.")
        elif s in stacks:
            notes.append(f"{s}: no in-process reference on {h['engine']} ran, so no overhead "
                         "is given (an engine difference is not serving cost).")
    notes.append("Overhead vs in-process = stack minus the same-engine in-process reference at "
                 "the same phase, in the same answer mode: streamed stacks against the streamed "
                 "reference, KServe against the reference answering whole (an extra phase, "
                 f"'<first phase>{WHOLE_SUFFIX}', run for the reference only).")
    if ENGINE_ALONE in per_stack:
        engine = per_stack[ENGINE_ALONE]
        tokens = engine["phases"][0]["prompt_tokens"]["p50"] if engine["phases"] else None
        notes.append("'engine-alone' is vLLM's own OpenAI server on the same model and engine "
                     f"flags ({' '.join(vllm_server_args(settings or Settings())[0])}), under "
                     "the same locust scenario, with prompts padded to the pipeline's prompt "
                     f"length (median {tokens or 'n/a'} prompt tokens as vLLM counted them, "
                     "target: the reference's median usage.prompt_tokens). 'x engine alone' "
                     "divides a stack's figure by the engine's: req/s below 1x and TTFT above "
                     "1x are what the pipeline and its serving layer cost.")
    notes.append("Percentiles carry a bootstrap 95% interval [low–high] over the phase's "
                 f"requests; a p95 needs n ≥ {MIN_SAMPLES[95]} and a p99 n ≥ {MIN_SAMPLES[99]}, "
                 "else the cell says 'n too small'. With `--repeat N` each phase ran N times: "
                 "percentiles pool every repeat's requests, rates are the median across "
                 "repeats with their range.")
    notes.append("Warm-up runs sequential requests until the last 3 requests' latency (TTFT "
                 "where the stack streams, else e2e) is no more than 10% below the 3 before "
                 "(the same rule for every stack; see the warm-up table).")
    notes.extend(queue_notes(per_stack))
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
                 errors: dict[str, str], engine_parity: bool = False,
                 settings: Settings | None = None, floor: dict[str, Any] | None = None) -> Path:
    """Write summary.json, the plots, report.md and index.html into `out`; returns `out`.
    `floor` (loadtests.hop_floor) defaults to the newest kept hop benchmark result."""
    heads = {s: headline(s, r, scenario, per_stack) for s, r in per_stack.items()}
    floor = hop_floor() if floor is None else floor
    diffs = differences(per_stack, engine_parity, heads, settings) + emulated_notes(per_stack)
    summary = {"scenario": scenario.name, "engine_parity": engine_parity, "stacks": heads,
               "errors": errors, "differences_by_design": diffs, "environment": env,
               "stack_names": {"inprocess": "in-process reference on its default engine "
                                            "(transformers, KServe's)",
                               "inprocess-<engine>": "in-process reference on another engine "
                                                     "(inprocess-vllm: Ray's)",
                               "engine-alone": "vLLM's own OpenAI server, padded prompts"},
               "units": {"*_ms*": "milliseconds", "*_rps": "requests/s",
                         "*tokens_per_s": "tokens/s"},
               "hop_floor": floor,
               "vllm_bench": {s: r["vllm_bench"] for s, r in per_stack.items()
                              if r.get("vllm_bench")}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    bench_notes = vllm_bench_notes(per_stack)
    sections: list[tuple[str, Table]] = [
        ("Headline", headline_table(heads, per_stack)),
        ("Per phase (client side)", phase_table(per_stack)),
        *([(VLLM_BENCH_TITLE, vllm_bench_table(per_stack))] if bench_notes else []),
        ("Time inside each stage, ms (server side, pipeline_stage_seconds)",
         stage_table(per_stack, "stage_seconds")),
        (HOP_TITLE, with_floor(stage_table(per_stack, "hop_seconds"), floor)),
        *([(FLOOR_TITLE, floor_table(floor))] if floor.get("found") else []),
        ("Whole request and generator, ms (server side)", generator_table(per_stack)),
        ("Waiting for the generator, ms: the same place on every stack (server side)",
         queue_table(per_stack)),
        ("Client minus server, ms: proxy, HTTP and transport outside the stages (joined by "
         "x-request-id)", join_table(per_stack)),
        ("Warm-up until steady", warmup_table(per_stack)),
        ("Failures by reason", failure_table(per_stack)),
    ]
    sections = [(title, mark_emulated(table, per_stack)) for title, table in sections]
    context = {
        "scenario": scenario, "differences": diffs, "errors": errors, "sections": sections,
        "section_notes": {VLLM_BENCH_TITLE: bench_notes, HOP_TITLE: floor_notes(floor)},
        "figures": plots(out, scenario, per_stack) if per_stack else [],
        "environment": environment_table(env),
        "scenario_line": (
            f"`{scenario.name}`: {scenario.description} max_tokens={scenario.max_tokens}, "
            f"warm-up {scenario.warmup_requests}-{scenario.warmup_max_requests} requests "
            "(until steady), phases: "
            + ", ".join(_phase_words(p) for p in scenario.phases) + "."),
    }
    for template, name in (("report.md.j2", "report.md"), ("index.html.j2", "index.html")):
        (out / name).write_text(TEMPLATES.get_template(template).render(context))
    return out


def _phase_words(phase) -> str:
    """`c8 (20s, on until 22 sent, at most 75s)`: a phase as the scenario line names it."""
    sized = getattr(phase, "min_requests", 0)
    return (f"{phase.name} ({phase.duration_s:g}s"
            + (f", on until {sized} sent, at most {phase.longest_s:g}s" if sized else "") + ")")

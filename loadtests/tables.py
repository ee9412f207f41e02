"""The report's tables, built once as rows from the stacks' results.

Markdown and HTML both render these rows (templates/), so the two documents never disagree;
`headline` is also what summary.json carries per stack. Nothing here measures anything.
"""

from __future__ import annotations

from typing import Any

from loadtests import results
from loadtests.scenarios import WHOLE_SUFFIX, Scenario
from shared_pipeline.schemas import STAGES

Table = tuple[list[str], list[list[Any]]]  # header, rows


def fmt(value: Any, digits: int = 0) -> str:
    """A cell: thousands separators, `digits` decimals for floats, "n/a" for a missing figure."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def phase_of(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    """One phase's client-side statistics from a stack's result, None if it did not run."""
    return next((p for p in result["phases"] if p["phase"] == name), None)


def ms(seconds: float | None) -> float | None:
    """Seconds (Prometheus's unit) to milliseconds (the report's), keeping None."""
    return seconds * 1000 if seconds is not None else None


def headline(stack: str, result: dict[str, Any], scenario: Scenario,
             reference: dict[str, Any] | None) -> dict[str, Any]:
    """The figures summary.json and the first table carry for one stack."""
    conc = [p for p in scenario.phases if p.kind == "concurrency"]
    first = phase_of(result, conc[0].name) if conc else None
    last = phase_of(result, conc[-1].name) if conc else None
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
        "hop_total_mean_ms": ms(hop_total),
        "max_generator_queue_depth": max(queue, default=None),
        "low_load_phase": conc[0].name if conc else None,
        "high_load_phase": conc[-1].name if conc else None,
    }
    if reference is not None and stack != "inprocess" and first:
        # like for like: a stack answering whole is set against the reference answering whole
        ref_phase = first["phase"] if result["streams"] else first["phase"] + WHOLE_SUFFIX
        if phase_of(reference, ref_phase) is not None:
            out["overhead_e2e_p50_ms_low_load"] = results.overhead(
                result, {"phases": [{**phase_of(reference, ref_phase), "phase": first["phase"]}]},
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
            f"{fmt(ms(data[s]['mean_s']), 1)} / {fmt(ms(data[s]['p95_s']), 1)}"
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
        rows.append([stack, fmt(ms(req.get("p50_s"))), fmt(ms(req.get("p95_s"))),
                     fmt(ms(ttft.get("p50_s"))), fmt(ms(ttft.get("p95_s"))),
                     fmt(ms(tpot.get("p50_s")), 1),
                     fmt(s.get("generated_tokens", {}).get("all")),
                     ", ".join(f"{k} {v:.0f}" for k, v in
                               sorted(s.get("requests_by_status", {}).items())) or "n/a"])
    return header, rows


def failure_table(per_stack: dict[str, Any]) -> Table:
    rows = [[stack, reason, count] for stack, r in per_stack.items()
            for reason, count in sorted(r["overall"]["failure_reasons"].items())]
    return ["stack", "reason", "count"], rows




def environment_table(env: dict[str, Any]) -> Table:
    """The run's environment (host.environment) as item / value rows."""
    return (["item", "value"], [
        ["date (UTC)", env["date_utc"]], ["CPU", f"{env['cpu']} ({env['cores']} cores)"],
        ["memory", f"{env['memory_gib']} GiB"], ["OS", env["os"]], ["Python", env["python"]],
        *[[k, v] for k, v in env["packages"].items()],
        ["generator model", env["generator_model"]], ["embedding model", env["embedding_model"]],
        ["reranker", env["cross_encoder"]],
        *[[f"engine {s}", f"{e['asked']} (metrics: {e['detected'] or 'n/a'})"]
          for s, e in env["engines"].items()],
        *[[f"revision {s}", v or "n/a"] for s, v in env["revisions"].items()],
        ["metrics source", env["metrics_source"]]])


def to_markdown(table: Table) -> str:
    """A Markdown table (pipes in cells escaped); `_none_` for no rows."""
    header, rows = table
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"

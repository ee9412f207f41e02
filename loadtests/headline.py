"""The headline: per stack, the figures summary.json carries and the report's first table.

Overheads are taken against the in-process reference on the *same engine* (loadtests.references:
`inprocess` for transformers, `inprocess-vllm` for vLLM), and each figure names the reference
it used. Throughput and TTFT are also given as a ratio to the engine alone (vLLM's own server,
prompts padded to the pipeline's length): the limit a stack is measured against.
"""

from __future__ import annotations

from typing import Any

from loadtests import results
from loadtests.engine_alone import NAME as ENGINE_ALONE
from loadtests.references import is_reference
from loadtests.scenarios import WHOLE_SUFFIX, Scenario
from loadtests.tables import Table, fmt, ms, phase_of
from loadtests.uncertainty import cell


def same_engine_reference(result: dict[str, Any], per_stack: dict[str, Any]) -> str | None:
    """The reference run on the stack's engine, None when the comparison ran none."""
    return next((s for s, r in per_stack.items()
                 if is_reference(s) and r["engine"] == result["engine"]), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def headline(stack: str, result: dict[str, Any], scenario: Scenario,
             per_stack: dict[str, Any]) -> dict[str, Any]:
    """The figures summary.json and the first table carry for one stack."""
    conc = [p for p in scenario.phases if p.kind == "concurrency"]
    first = phase_of(result, conc[0].name) if conc else None
    last = phase_of(result, conc[-1].name) if conc else None
    server = result.get("server", {})
    hops = server.get("hop_seconds", {})
    hop_total = sum(h["mean_s"] or 0 for h in hops.values()) if hops else None
    queue = [max(v.values(), default=0) for v in
             (p.get("max_queue_depth", {}) for p in server.get("phases", {}).values())]
    warm = result.get("warmup") if isinstance(result.get("warmup"), dict) else {}
    joined = (result.get("join") or {}).get("client_minus_server_ms") or {}
    out = {
        "engine": result["engine"], "engine_detected": result.get("engine_detected"),
        "streams": result["streams"], "startup_s": result["startup_s"],
        "requests": result["overall"]["requests"], "ok": result["overall"]["ok"],
        "failed": result["overall"]["failed"], "rejected": result["overall"]["rejected"],
        "error_rate": result["overall"]["error_rate"],
        "peak_throughput_rps": result["overall"]["peak_throughput_rps"],
        "peak_output_tokens_per_s": result["overall"]["peak_output_tokens_per_s"],
        "repeats": result.get("repeat", 1),
        "low_load_phase": conc[0].name if conc else None,
        "high_load_phase": conc[-1].name if conc else None,
        "hop_total_mean_ms": ms(hop_total),  # whole run, Prometheus: the hop section's sum
        "max_generator_queue_depth": max(queue, default=None),
        "queue_sample_period_s": server.get("queue_sample_period_s"),
        "warmup_requests": warm.get("requests"), "warmup_steady": warm.get("steady"),
        "client_minus_server_p50_ms": joined.get("p50"),
    }
    wanted = (("low_load", first, "e2e", ("p50", "p95")), ("low_load", first, "ttft", ("p50",)),
              ("low_load", first, "tpot", ("p50",)), ("low_load", first, "hop", ("mean", "p50")),
              ("high_load", last, "e2e", ("p50", "p95")))
    for load, phase, metric, stats in wanted:
        dist = (phase.get(f"{metric}_ms") or {}) if phase else {}
        for stat in stats:
            out[f"{metric}_{stat}_ms_{load}"] = dist.get(stat)
            out[f"{metric}_{stat}_ms_{load}_ci"] = (dist.get("ci") or {}).get(stat)
        out[f"{metric}_n_{load}"] = dist.get("n")
    out["throughput_rps_high_load"] = last["throughput_rps"] if last else None
    if is_reference(stack) or stack == ENGINE_ALONE:
        return out
    ref = same_engine_reference(result, per_stack)
    out["overhead_reference"] = ref
    out["overhead_reference_engine"] = per_stack[ref]["engine"] if ref else None
    if ref is not None and first:
        # like for like: a stack answering whole is set against the reference answering whole
        ref_phase = first["phase"] if result["streams"] else first["phase"] + WHOLE_SUFFIX
        if phase_of(per_stack[ref], ref_phase) is not None:
            out["overhead_e2e_p50_ms_low_load"] = results.overhead(
                result, {"phases": [{**phase_of(per_stack[ref], ref_phase),
                                     "phase": first["phase"]}]}, first["phase"])
            out["overhead_reference_phase"] = ref_phase
    engine = per_stack.get(ENGINE_ALONE)
    if engine is not None:
        e_first = phase_of(engine, first["phase"]) if first else None
        e_last = phase_of(engine, last["phase"]) if last else None
        out["engine_alone_throughput_ratio_high_load"] = _ratio(
            out["throughput_rps_high_load"], e_last and e_last["throughput_rps"])
        out["engine_alone_peak_throughput_ratio"] = _ratio(
            out["peak_throughput_rps"], engine["overall"]["peak_throughput_rps"])
        out["engine_alone_ttft_p50_ratio_low_load"] = _ratio(
            out["ttft_p50_ms_low_load"], e_first and e_first["ttft_ms"]["p50"])
        out["engine_alone_e2e_p50_ratio_low_load"] = _ratio(
            out["e2e_p50_ms_low_load"], e_first and e_first["e2e_ms"]["p50"])
    return out


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def _unit(value: float | None, digits: int = 0, unit: str = " ms") -> str:
    return fmt(value, digits) + (unit if value is not None else "")


def headline_table(heads: dict[str, dict[str, Any]], per_stack: dict[str, Any]) -> Table:
    header = ["stack", "engine", "streams", "ok / failed", "peak req/s", "peak tok/s",
              "e2e p50 low [95% CI] (n)", "e2e p95 low", "e2e p50 high", "e2e p95 high",
              "TTFT p50 low", "TPOT p50 low", "overhead (e2e p50 low) vs same-engine reference",
              "x engine alone: req/s high, TTFT p50 low, e2e p50 low",
              "hop total per answer low: mean, p50 [95% CI] (n)",
              "max gen. queue", "warm-up requests"]
    rows = []
    for stack, h in heads.items():
        r = per_stack[stack]
        low = phase_of(r, h["low_load_phase"]) if h["low_load_phase"] else None
        high = phase_of(r, h["high_load_phase"]) if h["high_load_phase"] else None
        e2e_low = low["e2e_ms"] if low else {}
        e2e_high = high["e2e_ms"] if high else {}
        ttft_low = low["ttft_ms"] if low else {}
        hop_low = (low.get("hop_ms") or {}) if low else {}
        hops = (f"{_unit(hop_low['mean'], 1)}, {cell(hop_low, 50, 1)} (n={hop_low['n']})"
                if hop_low.get("n") else "n/a")
        if "overhead_reference" not in h:
            overhead = "(reference)" if is_reference(stack) else "(the limit)"
        elif h.get("overhead_e2e_p50_ms_low_load") is None:
            overhead = f"n/a: no reference on {h['engine']} in this run"
        else:
            overhead = (_unit(h["overhead_e2e_p50_ms_low_load"])
                        + f" vs {h['overhead_reference']} ({h['overhead_reference_phase']})")
        ratios = ("n/a" if "engine_alone_peak_throughput_ratio" not in h else
                  f"{_x(h['engine_alone_throughput_ratio_high_load'])}, "
                  f"{_x(h['engine_alone_ttft_p50_ratio_low_load'])}, "
                  f"{_x(h['engine_alone_e2e_p50_ratio_low_load'])}")
        warm = (f"{h['warmup_requests']}" + ("" if h["warmup_steady"] else " (not steady)")
                if h.get("warmup_requests") is not None else "n/a")
        rows.append([stack, h["engine"] + ("" if h["engine_detected"] in (None, h["engine"])
                                           else f" (metrics say {h['engine_detected']})"),
                     "yes" if h["streams"] else "no (whole answer)",
                     f"{h['ok']} / {h['failed']}", fmt(h["peak_throughput_rps"], 2),
                     fmt(h["peak_output_tokens_per_s"], 1),
                     cell(e2e_low, 50) + f" (n={e2e_low.get('n', 0)})", cell(e2e_low, 95),
                     cell(e2e_high, 50), cell(e2e_high, 95),
                     cell(ttft_low, 50) if ttft_low.get("n") else "n/a",
                     _unit(h["tpot_p50_ms_low_load"], 1), overhead, ratios,
                     hops, fmt(h["max_generator_queue_depth"]),
                     warm])
    return header, rows

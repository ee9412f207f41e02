"""The report's tables, built once as rows from the stacks' results.

Markdown and HTML both render these rows (templates/), so the two documents never disagree;
Percentiles are shown with their bootstrap 95% interval, and not at all where n is too small
(loadtests.uncertainty). Nothing here measures anything.
"""

from __future__ import annotations

from typing import Any

from loadtests.scenarios import WHOLE_SUFFIX
from loadtests.uncertainty import cell
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


def phase_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "phase", "load", "sent", "ok", "failed (rejected)", "req/s", "tok/s",
              "e2e p50 [95% CI]", "e2e p95", "e2e p99", "TTFT p50", "TTFT p95", "TPOT p50",
              "TPOT p95", "requested → achieved rate", "server queue max"]
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
            across = p.get("across_repeats") or {}
            rps = fmt(p["throughput_rps"], 2) + (
                f" ({fmt(across['throughput_rps']['min'], 2)}–"
                f"{fmt(across['throughput_rps']['max'], 2)} over {p['repeats']} repeats)"
                if across.get("throughput_rps") else "")
            rows.append([stack, p["phase"], load, p["requests"], p["ok"],
                         f"{p['failed']} ({p['rejected']})", rps,
                         fmt(p["output_tokens_per_s"], 1), cell(p["e2e_ms"], 50),
                         cell(p["e2e_ms"], 95), cell(p["e2e_ms"], 99),
                         _maybe(p["ttft_ms"], 50), _maybe(p["ttft_ms"], 95),
                         _maybe(p["tpot_ms"], 50, 1), _maybe(p["tpot_ms"], 95, 1), rate,
                         fmt(max(queue.values(), default=None))])
    return header, rows


def _maybe(dist: dict[str, Any], p: int, digits: int = 0) -> str:
    """A client percentile that may not exist (no TTFT for whole answers): n/a, not n=0."""
    return cell(dist, p, digits) if dist.get("n") else "n/a"


def client_max_ms(result: dict[str, Any]) -> float | None:
    """The slowest successful request the client saw in the whole run (ms)."""
    return max((p["e2e_ms"]["max"] for p in result.get("phases", [])
                if p["e2e_ms"].get("max") is not None), default=None)


def server_ms(seconds: float | None, client_max: float | None, digits: int = 0) -> str:
    """A server-side quantile (interpolated in histogram buckets), in ms. One above the slowest
    request the client saw cannot be a measured time: it is shown with a note that it only
    says "inside this bucket"."""
    value = ms(seconds)
    if value is not None and client_max is not None and value > client_max:
        return f"{fmt(value, digits)} (bucket bound; client max {fmt(client_max)})"
    return fmt(value, digits)


def stage_table(per_stack: dict[str, Any], key: str) -> Table:
    """Server-side mean / p95 per stage (ms) over the whole run, one row per stack."""
    header = ["stack", *[f"{s} mean / p95" for s in STAGES]]
    rows = []
    for stack, r in per_stack.items():
        data = r.get("server", {}).get(key, {})
        if not data:
            continue
        top = client_max_ms(r)
        rows.append([stack, *[
            f"{fmt(ms(data[s]['mean_s']), 1)} / {server_ms(data[s]['p95_s'], top, 1)}"
            if s in data else "n/a" for s in STAGES]])
    return header, rows


def generator_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "server e2e p50", "server e2e p95", "generator TTFT p50",
              "generator TTFT p95", "generator TPOT p50", "generated tokens", "requests by status"]
    rows = []
    for stack, r in per_stack.items():
        s = r.get("server", {})
        if not s:
            continue
        top = client_max_ms(r)
        req = s.get("request_seconds", {}).get("all", {})
        ttft = s.get("ttft_seconds", {}).get("all", {})
        tpot = s.get("tpot_seconds", {}).get("all", {})
        rows.append([stack, server_ms(req.get("p50_s"), top), server_ms(req.get("p95_s"), top),
                     server_ms(ttft.get("p50_s"), top), server_ms(ttft.get("p95_s"), top),
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
        *([["stream batching", f"the stacks join streamed deltas for {batch:g} ms "
            "(generate.stream_batch_ms; the first at once); the references and the engine "
            "alone send every token"]] if (batch := env.get("stream_batch_ms")) else []),
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

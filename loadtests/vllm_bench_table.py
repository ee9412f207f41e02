"""The report's "vLLM's benchmark client beside locust" section.

Per streaming stack, what `vllm bench serve` measured in its one compare run
(`raw/<stack>/vllm_bench.json`, loadtests.vllm_bench.beside_locust) next to locust's phase at the
same concurrency: two clients, their own definitions, one stack. Where they agree, the figures
belong to the stack, not to a client; where they differ, the notes say what each one counts.
Nothing here measures anything.
"""

from __future__ import annotations

from typing import Any

from loadtests.tables import Table, fmt

TITLE = "vLLM's benchmark client beside locust (client side, the same stack)"
HEADER = ["stack", "client", "load", "requests", "failed", "TTFT p50 ms", "TPOT p50 ms",
          "output tok/s", "req/s"]


def locust_phase(result: dict[str, Any], users: int) -> dict[str, Any] | None:
    """Locust's concurrency phase with `users` users (the first repeat's name), else the
    concurrency phase closest to it; None without a concurrency phase."""
    closed = [p for p in result.get("phases", [])
              if p["kind"] == "concurrency" and not p["phase"].endswith("-whole")]
    return min(closed, key=lambda p: (abs(p["users"] - users), p["users"]), default=None)


def _p50(dist: dict[str, Any], digits: int) -> str:
    return fmt(dist.get("p50"), digits) if dist.get("n") else "n/a"


def vllm_bench_table(per_stack: dict[str, Any]) -> Table:
    """Two rows per stack that ran the compare step: vLLM's client, then locust's phase at the
    same concurrency (a run that failed reads "did not finish"; its error is in the notes)."""
    rows: list[list[Any]] = []
    for stack, r in per_stack.items():
        bench = r.get("vllm_bench")
        if not bench or bench.get("skipped"):
            continue
        load = f"{bench['num_prompts']} prompts, max concurrency {bench['max_concurrency']}"
        if bench.get("error"):
            rows.append([stack, "vllm bench serve", load, "did not finish", "n/a",
                         "n/a", "n/a", "n/a", "n/a"])
        else:
            rows.append([stack, f"vllm bench serve ({bench['backend']})", load, bench["n"],
                         bench["failed"], fmt(bench["ttft_p50_ms"]),
                         fmt(bench["tpot_p50_ms"], 1), fmt(bench["output_tok_per_s"], 1),
                         fmt(bench["req_per_s"], 2)])
        p = locust_phase(r, bench["max_concurrency"])
        if p is None:
            rows.append([stack, "locust", "no concurrency phase", *["n/a"] * 6])
            continue
        rows.append([stack, "locust", f"phase {p['phase']}: {p['users']} users, "
                     f"{p['duration_s']:g} s", p["requests"], p["failed"],
                     _p50(p["ttft_ms"], 0), _p50(p["tpot_ms"], 1),
                     fmt(p["output_tokens_per_s"], 1), fmt(p["throughput_rps"], 2)])
    return HEADER, rows


def vllm_bench_notes(per_stack: dict[str, Any]) -> list[str]:
    """How the two clients ran and count, and every stack the step skipped or lost."""
    ran = {s: r["vllm_bench"] for s, r in per_stack.items() if r.get("vllm_bench")}
    if not ran:
        return []
    plan = next(iter(ran.values()))
    notes = [
        f"`vllm bench serve --backend {plan['backend']}` ran once per streaming stack after "
        f"its locust phases, with the stack still up: {plan['num_prompts']} of the pipeline's "
        f"own questions (`--dataset-name custom`), at most {plan['max_concurrency']} at once, "
        f"{plan['output_len']} tokens each (`--ignore-eos`), the same as locust asks. Its JSON "
        "is kept raw in `raw/<stack>/vllm_bench.json`. Locust's row is its phase at the same "
        "concurrency (or the closest one).",
        "Both clients time TTFT from sending the request to the first streamed chunk with a "
        "token and TPOT as (e2e - TTFT) / (tokens - 1), tokens from the server's `usage` "
        "(vLLM falls back to counting with the tokenizer). vLLM's rates are over its whole "
        "run, ramp-up and drain included; locust's over its phase, a closed loop from its "
        "first second. Each p50 is over the requests in its row.",
    ]
    for stack, bench in ran.items():
        if bench.get("skipped"):
            notes.append(f"{stack}: not run ({bench['skipped']}).")
        elif bench.get("error"):
            notes.append(f"{stack}: vllm bench serve did not finish: {bench['error']} "
                         f"(its log beside `{bench['file']}`).")
    return notes

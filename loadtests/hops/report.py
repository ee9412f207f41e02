"""The hop benchmark's table (rich, Markdown) and what each row and figure means."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from loadtests.hops.payloads import size_label

HOP_MEANING = (
    "A hop is one client-measured round trip to a null stage (it answers its input unchanged): "
    "the request and the answer each carry the JSON payload of the row's size. HTTP rows are "
    "timed by a pooled httpx AsyncClient in the benchmark process; Ray rows inside a Ray worker "
    "(a Serve driver deployment, or a plain actor for the floor), where the pipeline's ingress "
    "makes its stage calls, so no HTTP proxy is on the Ray path. `over floor` is the row's p50 "
    "minus its floor's p50 in the same cell (HTTP rows against the uvicorn floor, Ray rows "
    "against the bare actor call).")

ROWS: dict[str, tuple[str, str]] = {
    # row -> (what it is, the floor it reads against)
    "floor_http": ("floor: bare uvicorn ASGI echo, httpx loopback POST", "floor_http"),
    "kserve_direct": ("KServe ModelServer v1 :predict, called directly", "floor_http"),
    "kserve_graph": ("KServe: client -> local graph runner (1-step Sequence) -> ModelServer",
                     "floor_http"),
    "floor_ray_actor": ("floor: bare Ray actor call (async actor -> async actor)",
                        "floor_ray_actor"),
    "ray_handle": ("Ray DeploymentHandle, default options (by reference)", "floor_ray_actor"),
    "ray_handle_by_value": ("Ray handle, _by_reference=False (gRPC, cloudpickle)",
                            "floor_ray_actor"),
    "ray_handle_orjson": ("Ray handle, _by_reference=False + orjson request/response",
                          "floor_ray_actor"),
    "ray_throughput": ("Ray handle, RAY_SERVE_THROUGHPUT_OPTIMIZED=1, default options",
                       "floor_ray_actor"),
    "ray_throughput_orjson": ("Ray handle, RAY_SERVE_THROUGHPUT_OPTIMIZED=1 + orjson",
                              "floor_ray_actor"),
}


def add_over_floor(rows: list[dict[str, Any]]) -> None:
    """Set `over_floor_p50_ms` on every row whose floor was measured in the same cell."""
    floors = {(r["row"], r["size"], r["concurrency"]): r["p50_ms"] for r in rows
              if r["row"].startswith("floor_")}
    for r in rows:
        floor = floors.get((ROWS[r["row"]][1], r["size"], r["concurrency"]))
        r["over_floor_p50_ms"] = None if floor is None else round(r["p50_ms"] - floor, 3)


def floor_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """floor row -> {"<size>@c<concurrency>": p50 ms}: the figures other hop numbers read against
    (the comparison report's hop section takes them from here)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["row"].startswith("floor_"):
            out.setdefault(r["row"], {})[f"{r['size']}@c{r['concurrency']}"] = r["p50_ms"]
    return out


def _grid(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one line per (transport, size), one column pair per concurrency."""
    concurrencies = sorted({r["concurrency"] for r in results["rows"]})
    header = ["row", "payload"]
    for c in concurrencies:
        header += [f"c{c} p50 ms", f"c{c} p95 ms", f"c{c} over floor", f"c{c} req/s"]
    cells = {(r["row"], r["size"], r["concurrency"]): r for r in results["rows"]}
    lines = []
    for row in [name for name in ROWS if any(r["row"] == name for r in results["rows"])]:
        for size in results["sizes"]:
            line = [row, size_label(size)]
            for c in concurrencies:
                r = cells.get((row, size, c))
                if r is None:
                    line += ["-"] * 4
                    continue
                over = r["over_floor_p50_ms"]
                line += [f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                         "-" if over is None or row.startswith("floor_") else f"{over:+.2f}",
                         f"{r['rps']:.0f}"]
            lines.append(line)
    return header, lines


def rich_table(results: dict[str, Any]) -> Table:
    header, lines = _grid(results)
    table = Table(title="Hop round trip of a null stage (p50/p95 ms)", caption=HOP_MEANING)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 2 else "right")
    for line in lines:
        table.add_row(*line)
    return table


def state_table(results: dict[str, Any]) -> Table:
    table = Table(title=f"PipelineState size at each hop ({results['state_sizes']['question']})")
    for name in ("state after", "JSON bytes", "pickle bytes", "retrieved", "reranked"):
        table.add_column(name, justify="left" if name == "state after" else "right")
    for hop in results["state_sizes"]["hops"]:
        table.add_row(hop["after"], str(hop["json_bytes"]), str(hop["pickle_bytes"]),
                      str(hop["retrieved"]), str(hop["reranked"]))
    return table


def markdown(results: dict[str, Any]) -> str:
    """The whole result as a Markdown page (hops.md)."""
    header, lines = _grid(results)
    env = results["environment"]
    out = [f"# Hop benchmark, {results['date']}", "",
           f"`{' '.join(['python -m loadtests.bench_hops', results['argv']]).strip()}` on "
           f"{env['cpus']} CPUs "
           f"(Python {env['python']}, kserve {env['kserve']}, ray {env['ray']}); warmup "
           f"{results['warmup']} calls per cell, discarded.", "", HOP_MEANING, "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    out += ["", "Rows:", ""] + [f"- `{name}`: {desc}" for name, (desc, _) in ROWS.items()
                                if any(r["row"] == name for r in results["rows"])]
    sizes = results.get("state_sizes")
    if sizes:
        out += ["", "## PipelineState size at each hop", "",
                f"Question: {sizes['question']!r}. JSON bytes are the body of the next KServe "
                "step; pickle bytes what a Ray handle call carries by default.", "",
                "| state after | JSON bytes | pickle bytes | retrieved | reranked |",
                "|---|---|---|---|---|"]
        out += [f"| {h['after']} | {h['json_bytes']} | {h['pickle_bytes']} | {h['retrieved']} "
                f"| {h['reranked']} |" for h in sizes["hops"]]
        between = [h["json_bytes"] for h in sizes["hops"][1:-1]]  # what crosses a stage hop
        out += ["", f"Between stages the state is {min(between)}-{max(between)} bytes of JSON: "
                    "the payload column closest to what the pipeline sends is the one to read."]
    for note in results.get("notes", []):
        out += ["", note]
    return "\n".join(out) + "\n"

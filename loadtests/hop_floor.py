"""The floor under the report's hop figures: the newest kept result of the hop benchmark.

`pipeline_hop_seconds` is "previous stage exit -> this stage's entry": the state's way back from
one stage and on into the next, plus any waiting on the way. `python -m loadtests.bench_hops`
times that same round trip to a null stage on each transport with nothing else running, and
keeps it in `docs/results/hops-<date>/hops.json`. Each stack's hops read against two of its rows:
KServe's against the bare loopback HTTP floor (uvicorn + httpx) and a ModelServer called
directly; Ray's against a bare actor call and a DeploymentHandle call with default options (how
the stack's ingress calls its stages). The payload is the benchmark's size closest to the real
`PipelineState` between stages. `$TWINSERVE_HOPS_RESULT` names another result (a hops.json or
its folder). Nothing here measures anything.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtests.hops.payloads import size_label
from loadtests.hops.report import ROWS
from loadtests.stacks import BASE_STACK
from loadtests.tables import Table, fmt

HOPS_ENV = "TWINSERVE_HOPS_RESULT"
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "docs" / "results"
MAKE_ONE = "python -m loadtests.bench_hops"
# the stack a report row belongs to -> ((benchmark row, short name), ...): its floor, its hop
READS_AGAINST: dict[str, tuple[tuple[str, str], ...]] = {
    "kserve": (("floor_http", "HTTP floor"), ("kserve_direct", "KServe direct")),
    "rayserve": (("floor_ray_actor", "Ray actor floor"), ("ray_handle", "handle")),
}
LAYER = {"kserve": "KServe hops", "rayserve": "Ray Serve hops"}
TITLE = "Hop floor, ms: one null-stage round trip per transport, nothing else running " \
        f"(`{MAKE_ONE}`)"


def find_result(results_dir: Path = RESULTS_DIR,
                env: Mapping[str, str] | None = None) -> tuple[Path | None, str]:
    """(the hops.json to read, where it was looked for): `$TWINSERVE_HOPS_RESULT` when set,
    else the newest `hops-*/hops.json` under `results_dir` by the date it records."""
    named = (os.environ if env is None else env).get(HOPS_ENV)
    if named:
        path = Path(named)
        path = path / "hops.json" if path.is_dir() else path
        return (path if path.is_file() else None), f"${HOPS_ENV}={named}"
    kept = []
    for path in results_dir.glob("hops-*/hops.json"):
        try:
            kept.append((json.loads(path.read_text(encoding="utf-8")).get("date", ""), path))
        except (OSError, ValueError):
            continue  # a broken result is not the newest one
    return (max(kept)[1] if kept else None), f"{results_dir}/hops-*/hops.json"


def payload_size(result: dict[str, Any]) -> int:
    """The measured size closest to the median state between stages (the middle one without
    state sizes)."""
    sizes = sorted(result["sizes"])
    between = [h["json_bytes"] for h in result.get("state_sizes", {}).get("hops", [])[1:-1]]
    if not between:
        return sizes[len(sizes) // 2]
    middle = statistics.median(between)
    return min(sizes, key=lambda s: abs(s - middle))


def shown_path(path: Path) -> str:
    """`path` relative to the repository when it is inside it (a report names the kept file)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def load_floor(path: Path) -> dict[str, Any]:
    """The figures the report uses from one hop result: per row and concurrency, p50/p95/n at
    the chosen payload size."""
    result = json.loads(path.read_text(encoding="utf-8"))
    size = payload_size(result)
    wanted = {row for pairs in READS_AGAINST.values() for row, _ in pairs}
    rows: dict[str, dict[str, Any]] = {}
    for r in result["rows"]:
        if r["row"] in wanted and r["size"] == size:
            rows.setdefault(r["row"], {})[str(r["concurrency"])] = {
                k: r[k] for k in ("p50_ms", "p95_ms", "n")}
    between = [h["json_bytes"] for h in result.get("state_sizes", {}).get("hops", [])[1:-1]]
    return {"found": True, "path": shown_path(path), "date": result.get("date"),
            "cpus": result.get("environment", {}).get("cpus"), "size": size,
            "state_json_bytes": [min(between), max(between)] if between else None,
            "concurrencies": sorted({int(c) for cells in rows.values() for c in cells}),
            "rows": rows}


def hop_floor(results_dir: Path = RESULTS_DIR,
              env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The floor to read the hops against, or `found: False` with where it was looked for."""
    path, looked = find_result(results_dir, env)
    if path is None:
        return {"found": False, "looked_for": looked}
    try:
        return load_floor(path)
    except (OSError, ValueError, KeyError) as exc:
        return {"found": False, "looked_for": f"{path} ({type(exc).__name__}: {exc})"}


def floor_cell(stack: str, floor: dict[str, Any]) -> str:
    """The floor one hop-table row reads against: each transport's p50 per concurrency."""
    pairs = READS_AGAINST.get(BASE_STACK.get(stack, stack))
    if pairs is None:
        return "n/a (no transport)"
    parts = []
    for c in floor["concurrencies"]:
        figures = [f"{name} {fmt(floor['rows'].get(row, {}).get(str(c), {}).get('p50_ms'), 2)}"
                   for row, name in pairs]
        parts.append(f"c{c}: " + ", ".join(figures))
    return "; ".join(parts)


def with_floor(table: Table, floor: dict[str, Any]) -> Table:
    """The hop table with a last column: the floor each row reads against (none found: as is)."""
    header, rows = table
    if not floor.get("found"):
        return table
    column = f"floor p50 ({size_label(floor['size'])}, bench_hops)"
    return [*header, column], [[*row, floor_cell(row[0], floor)] for row in rows]


def floor_table(floor: dict[str, Any]) -> Table:
    """One row per benchmark transport the hop table reads against, with payload and n."""
    if not floor.get("found"):
        return [], []
    concurrencies = floor["concurrencies"]
    header = ["reads for", "transport", "benchmark row", "payload",
              *[h for c in concurrencies for h in (f"c{c} p50 / p95", f"c{c} n")]]
    rows = []
    for stack, pairs in READS_AGAINST.items():
        for row, _ in pairs:
            cells = floor["rows"].get(row, {})
            line = [LAYER[stack], ROWS[row][0], row, size_label(floor["size"])]
            for c in concurrencies:
                cell = cells.get(str(c))
                line += ([f"{fmt(cell['p50_ms'], 2)} / {fmt(cell['p95_ms'], 2)}", cell["n"]]
                         if cell else ["n/a", "n/a"])
            rows.append(line)
    return header, rows


WHOLE_RUN = ("These means are over the whole run, every load. The headline's hop total is "
             "each answer's own hops summed (its stage stamps) in the low-load phase, with n and "
             "an interval: the figure to hold against the floor.")


def floor_notes(floor: dict[str, Any]) -> list[str]:
    """Under the hop table: where the floor comes from and how to read it, or how to make one."""
    return [WHOLE_RUN, *_floor_source(floor)]


def _floor_source(floor: dict[str, Any]) -> list[str]:
    if not floor.get("found"):
        return [f"No hop benchmark result was found ({floor['looked_for']}), so these hops have "
                f"no floor to read against. Make one with `{MAKE_ONE}` (a benchmark, minutes; "
                "on a shared machine run it alone): it keeps its result in "
                f"`docs/results/hops-<date>/`, which the next report reads (or set "
                f"`{HOPS_ENV}` to a hops.json)."]
    state = floor["state_json_bytes"]
    size_why = (f"the measured size closest to the PipelineState between stages "
                f"({state[0]:,}-{state[1]:,} bytes of JSON)" if state else "the middle size")
    return [f"Floor from `{floor['path']}` ({floor['date']}, {floor['cpus']} CPUs): a null "
            f"stage's round trip at a {size_label(floor['size'])} payload, {size_why}; n per "
            "cell in the floor table. A hop here carries the state back from one stage and on "
            "into the next, as that round trip does, plus waiting: the part of a hop above its "
            "stack's own transport row is queueing and CPU contention, not the transport. "
            "KServe rows read against the loopback HTTP floor and a ModelServer called directly, "
            "Ray rows against a bare actor call and a DeploymentHandle call (default options). "
            f"Set `{HOPS_ENV}` to read another result."]

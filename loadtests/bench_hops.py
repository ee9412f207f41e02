"""The hop benchmark: what one hop between stages costs on each serving layer, and the floor.

    python -m loadtests.bench_hops [--quick] [--out DIR]

One null stage (it answers its input) behind each transport, JSON payloads of 1, 10 and 100 KB,
concurrency 1 and 8, hop p50/p95 per cell:
- KServe: a `kserve.ModelServer` v1 `:predict` called directly, and through the local graph
  runner (`python -m kserve_impl.graph`, a one-step Sequence);
- Ray: a DeploymentHandle call with default options, with `_by_reference=False` (gRPC) and with
  orjson request/response serialization, then with `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` (a fresh Ray);
- the floors: a bare uvicorn + httpx loopback POST, and a bare Ray actor call.
It also runs the pipeline's own stages (no engine) on a sample question and records the size of
the real `PipelineState` after each one, so the payload columns read against what actually
travels. A benchmark, not a test: run it alone (under the heavy lock on a shared machine).
Writes `hops.json` and `hops.md` to `docs/results/hops-<date>/` (or `--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests.hops.http_side import http_servers, measure_http
from loadtests.hops.null_ray import PROFILE_ENV as RAY_PROFILES
from loadtests.hops.payloads import DEFAULT_SIZES
from loadtests.hops.report import (
    add_over_floor,
    floor_summary,
    markdown,
    rich_table,
    state_table,
)

RAY_TIMEOUT_S = 1800


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n=20 at c1, 40 at c8 (debugging).")
    parser.add_argument("--n-c1", type=int, default=None, help="Requests per cell at c1 (200).")
    parser.add_argument("--n-c8", type=int, default=None, help="Requests per cell at c8 (400).")
    parser.add_argument("--warmup", type=int, default=None, help="Discarded calls per cell (10).")
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="Payload sizes in bytes, comma-separated.")
    parser.add_argument("--skip-state-sizes", action="store_true",
                        help="Do not run the stages to measure the real PipelineState sizes.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Output directory (docs/results/hops-<date>/).")
    args = parser.parse_args(argv)
    args.n_c1 = args.n_c1 or (20 if args.quick else 200)
    args.n_c8 = args.n_c8 or (40 if args.quick else 400)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 10)
    return args


def run_http(sizes: list[int], cells: list[tuple[int, int]], warmup: int,
             console: Console) -> list[dict[str, Any]]:
    rows = []
    with http_servers() as urls:
        for row, url in urls.items():
            console.log(f"measuring {row} ({url})")
            rows += [{"row": row} | r for r in asyncio.run(measure_http(url, sizes, cells,
                                                                         warmup))]
    return rows


def run_ray(profile: str, sizes: list[int], cells: list[tuple[int, int]], warmup: int,
            console: Console) -> list[dict[str, Any]]:
    """One profile in its own process with its own local Ray (the env is read at import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    env |= RAY_PROFILES[profile]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="twinserve-hops-ray-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "loadtests.hops.null_ray", "--profile", profile,
                   "--sizes", ",".join(map(str, sizes)),
                   "--cells", ",".join(f"{c}:{n}" for c, n in cells),
                   "--warmup", str(warmup), "--out", str(out)]
        flags = " ".join(f"{k}={v}" for k, v in RAY_PROFILES[profile].items()) or "defaults"
        console.log(f"measuring Ray profile {profile!r} ({flags})")
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=RAY_TIMEOUT_S, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"Ray profile {profile} failed ({done.returncode}):\n"
                               f"{(done.stdout + done.stderr)[-3000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def environment() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "kserve": version("kserve"), "ray": version("ray"), "httpx": version("httpx"),
            "uvicorn": version("uvicorn"), "platform": platform.platform()}


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    cells = [(1, args.n_c1), (8, args.n_c8)]
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": shlex.join(sys.argv[1:]), "environment": environment(), "sizes": sizes,
        "cells": [{"concurrency": c, "n": n} for c, n in cells], "warmup": args.warmup,
        "rows": [], "notes": [
            "msgpack serialization is not measured: Ray's msgpack path needs `ormsgpack`, "
            "which is not installed (nor on the project's dependency list).",
            "Ray payloads are JSON-shaped dicts; the pipeline itself passes `PipelineState` "
            "pydantic objects (cloudpickled by default, not JSON-serializable by orjson as is)."]}
    if not args.skip_state_sizes:
        from loadtests.hops.state_sizes import pipeline_state_sizes

        console.log("measuring the real PipelineState at each hop")
        results["state_sizes"] = pipeline_state_sizes()
    results["rows"] += run_http(sizes, cells, args.warmup, console)
    for profile in RAY_PROFILES:
        results["rows"] += run_ray(profile, sizes, cells, args.warmup, console)
    add_over_floor(results["rows"])
    results["floors"] = floor_summary(results["rows"])
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Wide enough for the table when the output is a file or a pipe (rich assumes 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 150)
    results = run(args, console)
    if "state_sizes" in results:
        console.print(state_table(results))
    console.print(rich_table(results))
    out = args.out or Path("docs/results") / f"hops-{dt.date.today().isoformat()}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hops.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "hops.md").write_text(markdown(results), encoding="utf-8")
    console.print(f"wrote {out / 'hops.json'} and {out / 'hops.md'}")


if __name__ == "__main__":
    main()

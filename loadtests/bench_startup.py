"""How long the generator's engine takes to start with a cold and with a warm compile cache.

`python -m loadtests.bench_startup [--starts 2] [--out docs/results/startup-<date>]`

A benchmark, not a test. Since `enforce_eager` is off by default (vLLM's own default), vLLM
compiles the model with torch.compile on its first start and keeps the result under
`VLLM_CACHE_ROOT`, which the stacks point at the project's cache directory (the first start on
a machine fills it; `twinserve prepare` does not). So the figure a user meets on a fresh
machine (cold) differs from every later start (warm). Each start here is vLLM's own OpenAI
server with exactly the stacks' engine flags (`vllm_server_command`), in a fresh process; "cold"
gets a new empty cache directory, "warm" the directory the first cold start filled. Measured:
seconds until `/v1/models` answers, and the first completion's latency after that (what a first
user waits for beyond readiness).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.engines.vllm_server import vllm_server_command
from shared_pipeline.processes import LOOPBACK, ManagedProcess, free_port

TIER = "small"


def one_start(settings: Settings, cache_root: Path, log_path: Path) -> dict[str, float]:
    """Start vLLM's server with `cache_root` as its compile cache; time readiness and a first
    completion; stop it."""
    port = free_port()
    cmd, env = vllm_server_command(settings, TIER, host=LOOPBACK, port=port)
    env = {**os.environ, **env, "VLLM_CACHE_ROOT": str(cache_root)}
    url = f"http://{LOOPBACK}:{port}"
    server = ManagedProcess("vllm-startup", cmd, log_path, ready_url=f"{url}/v1/models")
    started = time.perf_counter()
    server.start(env)
    try:
        server.wait_ready(600.0)
        ready_s = time.perf_counter() - started
        asked = time.perf_counter()
        httpx.post(f"{url}/v1/completions", timeout=300, json={
            "model": settings.served_model_name(TIER), "prompt": "Python lists are",
            "max_tokens": 8}).raise_for_status()
        return {"ready_s": ready_s, "first_completion_s": time.perf_counter() - asked}
    finally:
        server.stop(grace_s=20.0)


def measure(settings: Settings, starts: int, console: Console, log_dir: Path
            ) -> dict[str, list[dict[str, float]]]:
    """`starts` cold starts (each on a new empty cache) and `starts` warm ones (on the cache the
    first cold start filled), alternating so drift on a shared machine hits both alike."""
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="twinserve-startup-") as scratch:
        warm_root = Path(scratch) / "warm"
        for i in range(starts):
            cold_root = warm_root if i == 0 else Path(scratch) / f"cold-{i}"
            for kind, root in (("cold", cold_root), ("warm", warm_root)):
                console.log(f"start {i + 1}/{starts} {kind} (cache {root})")
                result = one_start(settings, root, log_dir / f"{kind}-{i}.log")
                console.log(f"  ready {result['ready_s']:.1f} s, first completion "
                            f"{result['first_completion_s']:.2f} s")
                runs[kind].append(result)
    return runs


def table(runs: dict[str, list[dict[str, float]]]) -> Table:
    out = Table(title="vLLM engine start, compile cache cold vs warm (s)")
    for column in ("cache", "n", "ready median", "ready min-max", "first completion median"):
        out.add_column(column)
    for kind, results in runs.items():
        if not results:
            continue
        ready = [r["ready_s"] for r in results]
        first = [r["first_completion_s"] for r in results]
        out.add_row(kind, str(len(results)), f"{statistics.median(ready):.1f}",
                    f"{min(ready):.1f}-{max(ready):.1f}", f"{statistics.median(first):.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=2, help="starts per cache state")
    parser.add_argument("--out", type=Path,
                        default=Path("docs/results") / f"startup-{dt.date.today()}")
    args = parser.parse_args()
    settings = Settings()
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = measure(settings, args.starts, console, Path("reports") / "startup-logs")
    argv, _ = vllm_server_command(settings, TIER)
    (args.out / "startup.json").write_text(json.dumps(
        {"runs": runs, "engine_flags": argv[3:], "date": str(dt.date.today())}, indent=2))
    console.print(table(runs))
    Console(file=(args.out / "startup.txt").open("w"), width=100).print(table(runs))


if __name__ == "__main__":
    main()

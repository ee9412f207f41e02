"""Engine and in-process pipeline benchmark: prints numbers, asserts nothing.

For each engine: output tokens/s at batch 1, 4 and 8 (every request `ignore_eos`, the same RAG-sized
prompt, so every batch does the same work per row), then the per-stage p50 of the in-process
pipeline over the shipped questions. Run:

    python -m loadtests.bench_engines [--engines transformers vllm] [--tokens 64] [--questions 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import SamplingParams, complete
from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.samples import load_questions
from shared_pipeline.schemas import STAGES, PipelineState, parse_chat_request

console = Console()


async def engine_throughput(settings: Settings, name: str, batches: list[int],
                            tokens: int) -> dict:
    pipeline = InProcessPipeline(settings.model_copy(
        update={"generate": settings.generate.model_copy(update={"engine": name})}))
    started = time.perf_counter()
    await pipeline.start()
    load_s = time.perf_counter() - started
    # One real RAG prompt (retrieved passages included), the size the pipeline sends.
    request = parse_chat_request({"messages": [{"role": "user", "content":
                                  "How does the with statement work?"}]}, pipeline.settings)
    state = PipelineState.start(request)
    for step in (pipeline.retriever.run, pipeline.reranker.run, pipeline.router.run):
        state = step(state)
    prompt = pipeline.generators["small"].build_prompt(state)
    engine = pipeline.engine
    params = SamplingParams(max_tokens=tokens, ignore_eos=True)
    await complete(engine, prompt, params, "warmup")
    rows = []
    for batch in batches:
        t0 = time.perf_counter()
        outs = await asyncio.gather(*(complete(engine, prompt, params, f"b{batch}-{i}")
                                      for i in range(batch)))
        wall = time.perf_counter() - t0
        generated = sum(o.completion_tokens for o in outs)
        rows.append({"batch": batch, "wall_s": round(wall, 3),
                     "output_tok_s": round(generated / wall, 1),
                     "ttft_p50_s": round(statistics.median(o.ttft_s for o in outs), 3),
                     "prompt_tokens": outs[0].prompt_tokens})
    stage_p50 = await pipeline_stages(pipeline)
    await pipeline.stop()
    return {"engine": name, "load_s": round(load_s, 1), "throughput": rows,
            "stage_p50_ms": stage_p50}


async def pipeline_stages(pipeline: InProcessPipeline, questions: int = 12) -> dict:
    """Per-stage p50 (ms) over sequential sample questions, plus end-to-end."""
    per_stage: dict[str, list[float]] = {s: [] for s in (*STAGES, "end_to_end")}
    for q in load_questions()[:questions]:
        request = parse_chat_request({"messages": [{"role": "user", "content": q.question}]},
                                     pipeline.settings)
        state = await pipeline.run(request)
        for stage, ms in state.stage_ms().items():
            per_stage[stage].append(ms)
        per_stage["end_to_end"].append((state.timings[-1].end - state.timings[0].start) * 1000)
    return {s: round(statistics.median(v), 1) for s, v in per_stage.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["transformers", "vllm"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    settings = Settings()
    results = []
    for name in args.engines:
        with console.status(f"{name}: loading and measuring"):
            results.append(asyncio.run(engine_throughput(settings, name, args.batches,
                                                         args.tokens)))
    cpu = platform.processor() or platform.machine()
    table = Table(title=f"engines · {args.tokens} new tokens/request · {cpu}")
    for col in ("engine", "batch", "wall s", "output tok/s", "TTFT p50 s", "prompt tok"):
        table.add_column(col, justify="right")
    for r in results:
        for row in r["throughput"]:
            table.add_row(r["engine"], str(row["batch"]), f"{row['wall_s']:.2f}",
                          f"{row['output_tok_s']:.1f}", f"{row['ttft_p50_s']:.3f}",
                          str(row["prompt_tokens"]))
    console.print(table)
    stages = Table(title="in-process pipeline · per-stage p50 (ms), sequential sample questions")
    stages.add_column("engine")
    for s in (*STAGES, "end_to_end"):
        stages.add_column(s, justify="right")
    for r in results:
        stages.add_row(r["engine"], *(f"{r['stage_p50_ms'].get(s, 0):.1f}"
                                      for s in (*STAGES, "end_to_end")))
    console.print(stages)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

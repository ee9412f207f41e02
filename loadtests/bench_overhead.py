"""Serving overhead: a stack against the in-process pipeline on the same engine. Prints numbers.

For each concurrency level the same shipped questions go through (a) `InProcessPipeline` in this
process and (b) the stack over HTTP. Reported per side: median end-to-end latency (client clock),
median summed hop time (`pipeline.hop_ms`: stage exit to next stage entry, from the response's own
stamps), output tokens/s, and for streaming stacks the median TTFT. Run:

    python -m loadtests.bench_overhead --stack kserve   [--concurrency 1 8] [--requests 16]
    python -m loadtests.bench_overhead --stack rayserve
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.samples import load_questions
from shared_pipeline.schemas import parse_chat_request

console = Console()
ENGINE_OF = {"kserve": "transformers", "rayserve": "vllm"}


def bodies(count: int, max_tokens: int, stream: bool = False) -> list[dict]:
    questions = load_questions()
    return [{"model": "pipeline", "max_tokens": max_tokens, "stream": stream,
             "messages": [{"role": "user", "content": questions[i % len(questions)].question}]}
            for i in range(count)]


def summarise(rows: list[dict], wall_s: float) -> dict:
    return {"requests": len(rows), "wall_s": round(wall_s, 2),
            "e2e_p50_ms": round(statistics.median(r["e2e_ms"] for r in rows), 1),
            "hop_p50_ms": round(statistics.median(r["hop_ms"] for r in rows), 2),
            "output_tok_s": round(sum(r["tokens"] for r in rows) / wall_s, 1),
            "ttft_p50_ms": (round(statistics.median(r["ttft_ms"] for r in rows), 1)
                            if all(r.get("ttft_ms") is not None for r in rows) else None)}


async def gather_limited(concurrency: int, jobs) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(job):
        async with gate:
            return await job()

    return await asyncio.gather(*(one(j) for j in jobs))


async def run_inprocess(pipeline: InProcessPipeline, items: list[dict], concurrency: int) -> dict:
    async def job(body):
        t0 = time.perf_counter()
        out = await pipeline.answer(parse_chat_request(body, pipeline.settings))
        return {"e2e_ms": (time.perf_counter() - t0) * 1000, "hop_ms": out["pipeline"]["hop_ms"],
                "tokens": out["usage"]["completion_tokens"]}

    t0 = time.perf_counter()
    rows = await gather_limited(concurrency, [lambda b=b: job(b) for b in items])
    return summarise(rows, time.perf_counter() - t0)


async def run_http(url: str, items: list[dict], concurrency: int, stream: bool) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        async def job(body):
            t0 = time.perf_counter()
            if not stream:
                r = await client.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                out = r.json()
                return {"e2e_ms": (time.perf_counter() - t0) * 1000,
                        "hop_ms": out["pipeline"]["hop_ms"],
                        "tokens": out["usage"]["completion_tokens"]}
            ttft = None
            final = None
            async with client.stream("POST", "/v1/chat/completions",
                                     json={**body, "stream": True}) as r:
                r.raise_for_status()
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if ttft is None and chunk["choices"] and \
                            chunk["choices"][0]["delta"].get("content"):
                        ttft = (time.perf_counter() - t0) * 1000
                    if "pipeline" in chunk:
                        final = chunk
            return {"e2e_ms": (time.perf_counter() - t0) * 1000, "ttft_ms": ttft,
                    "hop_ms": final["pipeline"]["hop_ms"],
                    "tokens": final["usage"]["completion_tokens"]}

        await job(items[0])  # warm-up: first request pays lazy initialisation
        t0 = time.perf_counter()
        rows = await gather_limited(concurrency, [lambda b=b: job(b) for b in items])
        return summarise(rows, time.perf_counter() - t0)


@contextlib.contextmanager
def stack_url(stack: str, settings: Settings):
    if stack == "kserve":
        from kserve_impl.local import running_stack
    else:
        from rayserve_impl.local import running_stack
    with running_stack(settings) as handle:
        yield getattr(handle, "url", handle)


async def measure_inprocess(settings: Settings, engine: str, levels: list[int], count: int,
                            max_tokens: int) -> dict:
    pipeline = InProcessPipeline(settings.model_copy(
        update={"generate": settings.generate.model_copy(update={"engine": engine})}))
    await pipeline.start()
    try:
        await pipeline.answer(parse_chat_request(bodies(1, max_tokens)[0], settings))  # warm-up
        return {c: await run_inprocess(pipeline, bodies(count, max_tokens), c) for c in levels}
    finally:
        await pipeline.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=["kserve", "rayserve"], required=True)
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    settings = Settings()
    engine = ENGINE_OF[args.stack]
    stream = args.stack == "rayserve"
    with console.status(f"in-process reference ({engine})"):
        reference = asyncio.run(measure_inprocess(settings, engine, args.concurrency,
                                                  args.requests, args.max_tokens))
    with console.status(f"starting the {args.stack} stack"), stack_url(args.stack, settings) as url:
        console.log(f"{args.stack} up at {url}")
        served = {c: asyncio.run(run_http(url, bodies(args.requests, args.max_tokens), c, False))
                  for c in args.concurrency}
        if stream:
            served_stream = {c: asyncio.run(run_http(url, bodies(args.requests, args.max_tokens),
                                                     c, True)) for c in args.concurrency}
    table = Table(title=f"{args.stack} vs in-process ({engine}) · {args.requests} requests/level"
                        f" · max_tokens {args.max_tokens}")
    for col in ("side", "concurrency", "e2e p50 ms", "hop p50 ms", "output tok/s", "TTFT p50 ms"):
        table.add_column(col, justify="right")
    results = {"stack": args.stack, "engine": engine, "inprocess": reference, args.stack: served}
    sides = [("inprocess", reference), (args.stack, served)]
    if stream:
        results[f"{args.stack}_stream"] = served_stream
        sides.append((f"{args.stack} (stream)", served_stream))
    for name, data in sides:
        for c, row in data.items():
            table.add_row(name, str(c), f"{row['e2e_p50_ms']:.0f}", f"{row['hop_p50_ms']:.1f}",
                          f"{row['output_tok_s']:.1f}",
                          "-" if row["ttft_p50_ms"] is None else f"{row['ttft_p50_ms']:.0f}")
    console.print(table)
    for c in args.concurrency:
        ratio = served[c]["e2e_p50_ms"] / reference[c]["e2e_p50_ms"]
        console.print(f"concurrency {c}: {args.stack} e2e p50 / in-process = {ratio:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

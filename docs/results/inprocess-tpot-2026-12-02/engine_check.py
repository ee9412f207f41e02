"""The transformers engine alone in this process: TTFT and TPOT of sequential requests.

No server, no HTTP: `TransformersEngine` (the code every transformers stack generates with) on a
prompt of about the pipeline's length (~550 tokens), 32 tokens, ignore_eos, greedy. Run it in a
fresh process per setting (torch reads OMP_NUM_THREADS once per thread), e.g.
  OMP_NUM_THREADS=1 python docs/results/inprocess-tpot-2026-12-02/engine_check.py --n 6
`--with-embedder`: before each request the retriever's MiniLM encoder embeds the question in a
worker thread, as the in-process reference does; `--embed-mode` picks the thread: `pool` (asyncio's
default executor, as `run_stage` does), `pool1` (one executor thread whose torch intra-op
threads are 1), `fresh` (a new thread per call, which exits after it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import SamplingParams, make_engine
from shared_pipeline.samples import load_questions


def one_torch_thread() -> None:
    torch.get_num_threads()  # this thread's pool size is set once, at its first torch call
    torch.set_num_threads(1)


async def in_fresh_thread(fn, *args):
    """`fn(*args)` in a new thread that ends with the call (its OpenMP pool goes with it)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def target() -> None:
        result = fn(*args)
        loop.call_soon_threadsafe(done.set_result, result)

    threading.Thread(target=target).start()
    return await done


async def run(n: int, warmup: int, with_embedder: bool, embed_mode: str) -> dict:
    settings = Settings()
    engine = make_engine(settings, "transformers")
    await engine.start()
    index = None
    if with_embedder:
        from shared_pipeline.index import PassageIndex

        index = PassageIndex(settings)
    passages = " ".join(p.text for p in (index.passages if index else [])[:8]) \
        or "Python lists are mutable sequences. " * 80
    pool1 = ThreadPoolExecutor(1, initializer=one_torch_thread)
    rows = []
    questions = [q.question for q in load_questions()]
    for i in range(warmup + n):
        q = questions[i % len(questions)]
        if index is not None and embed_mode == "pool":
            await asyncio.to_thread(index.embed, [q])
        elif index is not None and embed_mode == "pool1":
            await asyncio.get_running_loop().run_in_executor(pool1, index.embed, [q])
        elif index is not None:
            await in_fresh_thread(index.embed, [q])
        prompt = engine.tokenizer.apply_chat_template(
            [{"role": "system", "content": passages[:2600]}, {"role": "user", "content": q}],
            tokenize=False, add_generation_prompt=True)
        started = time.perf_counter()
        ttft = None
        async for d in engine.stream(prompt, SamplingParams(max_tokens=32, ignore_eos=True), "x"):
            if ttft is None and d.completion_tokens:
                ttft = time.perf_counter() - started
            last = d
        e2e = time.perf_counter() - started
        if i >= warmup:
            rows.append({"ttft_ms": ttft * 1000, "e2e_ms": e2e * 1000,
                         "tpot_ms": (e2e - ttft) * 1000 / (last.completion_tokens - 1),
                         "prompt_tokens": last.prompt_tokens})
    await engine.stop()
    return {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads_main": torch.get_num_threads(), "with_embedder": with_embedder,
            "embed_mode": embed_mode if with_embedder else None,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "n": n, **{f"{k}_p50": round(statistics.median(r[k] for r in rows), 1)
                       for k in ("ttft_ms", "tpot_ms", "e2e_ms", "prompt_tokens")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--with-embedder", action="store_true")
    parser.add_argument("--embed-mode", choices=("pool", "pool1", "fresh"), default="pool")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.warmup, args.with_embedder,
                                       args.embed_mode))), flush=True)


if __name__ == "__main__":
    main()

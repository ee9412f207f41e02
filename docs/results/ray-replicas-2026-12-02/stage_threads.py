"""Retrieve and rerank alone, with the thread count a Ray replica gets and the one KServe's do.

Ray sets `OMP_NUM_THREADS` in each worker to its `num_cpus` (floor, at least 1:
`ray._private.utils.set_omp_num_threads_if_unset`), so the retriever and reranker (num_cpus
0.25) run torch on 1 thread; a KServe stage server sets nothing, so torch takes every core.
One process per thread count, the stages called directly, nothing else running.

    flock /tmp/twinserve-heavy.lock python docs/results/ray-replicas-2026-12-02/stage_threads.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

WARM, N = 3, 30


def child() -> None:
    import torch

    from shared_pipeline.config import Settings
    from shared_pipeline.entry import enter
    from shared_pipeline.samples import load_questions
    from shared_pipeline.stages.rerank import Reranker
    from shared_pipeline.stages.retrieve import Retriever

    settings = Settings()
    retriever = Retriever(settings)
    reranker = Reranker(settings, index=retriever.index)
    questions = [q.question for q in load_questions()][: WARM + N]
    times: dict[str, list[float]] = {"retrieve": [], "rerank": []}
    for i, question in enumerate(questions):
        state = enter({"model": "pipeline", "messages": [{"role": "user", "content": question}]},
                      settings, "r")
        for name, step in (("retrieve", retriever.run), ("rerank", reranker.run)):
            started = time.perf_counter()
            state = step(state)
            if i >= WARM:
                times[name].append((time.perf_counter() - started) * 1e3)
    print(json.dumps({"torch_threads": torch.get_num_threads(), **{
        name: {"n": len(t), "mean_ms": statistics.mean(t), "p50_ms": statistics.median(t)}
        for name, t in times.items()}}))


def main() -> None:
    rows = []
    for threads in ("1", None):  # Ray's replicas; KServe's servers (unset)
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if threads:
            env["OMP_NUM_THREADS"] = threads
        out = subprocess.run([sys.executable, __file__, "child"], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows.append({"OMP_NUM_THREADS": threads or "unset",
                     **json.loads(out.strip().splitlines()[-1])})
    print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    child() if sys.argv[1:] == ["child"] else main()

"""The in-process reference against a stack on the same engine: sequential streamed requests.

Each stack in `--stacks` is started (`loadtests.stacks.launch`, the benchmark's launcher), warmed
up, sent `--n` sequential streamed chat requests (max_tokens 32, ignore_eos, temperature 0, the
locust body) and stopped; then the next. Printed and written: TTFT, TPOT and e2e medians, the
generate thread's torch thread counts from the server logs, and where the machine's CPU went
while the requests ran (the stack's processes, this client, everything else), so a run disturbed
by another process shows it.

Heavy (starts servers): run it under the lock, e.g.
  flock /tmp/twinserve-heavy.lock python docs/results/inprocess-tpot-2026-12-02/tpot_check.py \
      --stacks inprocess,kserve-orchestrated --n 8 --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from loadtests.stacks import launch
from shared_pipeline.config import Settings
from shared_pipeline.samples import load_questions


def one(url: str, question: str, max_tokens: int) -> dict[str, Any]:
    """One streamed request: e2e, TTFT (first chunk with text), TPOT as vLLM's bench defines it."""
    body = {"model": "pipeline", "stream": True, "temperature": 0.0, "max_tokens": max_tokens,
            "ignore_eos": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    ttft = tokens = None
    server: dict[str, float] = {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            chunk = json.loads(line[5:])
            tokens = (chunk.get("usage") or {}).get("completion_tokens", tokens)
            server = (chunk.get("pipeline") or {}).get("timings", server)
            choices = chunk.get("choices") or []
            if ttft is None and choices and (choices[0].get("delta") or {}).get("content"):
                ttft = (time.perf_counter() - started) * 1000
    e2e = (time.perf_counter() - started) * 1000
    return {"e2e_ms": e2e, "ttft_ms": ttft, "tokens": tokens, "server_ms": server,
            "tpot_ms": (e2e - ttft) / (tokens - 1) if ttft and tokens and tokens > 1 else None}


def tree_cpu_s(root: psutil.Process) -> float:
    """CPU seconds (user + system) of `root`'s descendants, now."""
    total = 0.0
    for p in root.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def thread_cpu(root: psutil.Process) -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, tid) -> ("<process>/<thread name>", CPU seconds) for every thread below `root`."""
    out = {}
    for p in root.children(recursive=True):
        try:
            name = " ".join(p.cmdline()[1:6])[-60:]
            for t in p.threads():
                comm = Path(f"/proc/{p.pid}/task/{t.id}/comm").read_text().strip()
                out[(p.pid, t.id)] = (f"{name} | {comm}", t.user_time + t.system_time)
        except (psutil.NoSuchProcess, FileNotFoundError):
            pass
    return out


def busiest(before: dict, after: dict, top: int = 10) -> list[tuple[str, float]]:
    """The `top` threads by CPU seconds used between two `thread_cpu` snapshots."""
    used = [(name, cpu - before.get(key, (name, 0.0))[1]) for key, (name, cpu) in after.items()]
    return [(name, round(s, 2)) for name, s in sorted(used, key=lambda u: -u[1])[:top]]


def busy_s() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def measure(stack: str, n: int, warmup: int, max_tokens: int) -> dict[str, Any]:
    questions = [q.question for q in load_questions()]
    me = psutil.Process()
    with tempfile.TemporaryDirectory(prefix=f"tpot-{stack}-") as tmp, \
            launch(stack, Settings(), Path(tmp)) as handle:
        for i in range(warmup):
            one(handle.url, questions[i % len(questions)], max_tokens)
        stack0, busy0, self0 = tree_cpu_s(me), busy_s(), sum(me.cpu_times()[:2])
        threads0 = thread_cpu(me)
        wall0 = time.perf_counter()
        rows = [one(handle.url, questions[(warmup + i) % len(questions)], max_tokens)
                for i in range(n)]
        wall = time.perf_counter() - wall0
        stack_s, self_s = tree_cpu_s(me) - stack0, sum(me.cpu_times()[:2]) - self0
        other_s = busy_s() - busy0 - stack_s - self_s
        hot = busiest(threads0, thread_cpu(me))
        threads = sorted({m.group(0) for log in Path(tmp).rglob("*.log")
                          for m in re.finditer(r"torch threads[^\n]*",
                                               log.read_text(errors="replace"))})
    med = {k: statistics.median(r[k] for r in rows) for k in ("ttft_ms", "tpot_ms", "e2e_ms")}
    stages = {s: round(statistics.median(r["server_ms"].get(s, 0.0) for r in rows), 1)
              for s in ("retrieve", "rerank", "generate")}
    return {"stack": stack, "n": n, **{f"{k}_p50": round(v, 1) for k, v in med.items()},
            "server_stage_ms_p50": stages,
            "cpu_s": {"stack": round(stack_s, 1), "client": round(self_s, 1),
                      "other": round(other_s, 1), "wall": round(wall, 1)},
            "torch_threads_logged": threads, "busiest_threads": hot, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default="inprocess,kserve-orchestrated")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    for stack in args.stacks.split(","):
        r = measure(stack, args.n, args.warmup, args.max_tokens)
        results.append(r)
        print(f"{args.label} {stack}: n={r['n']} TTFT p50 {r['ttft_ms_p50']} ms, TPOT p50 "
              f"{r['tpot_ms_p50']} ms, e2e p50 {r['e2e_ms_p50']} ms; server stages p50 "
              f"{r['server_stage_ms_p50']}; CPU s {r['cpu_s']}; "
              f"{r['torch_threads_logged']}", flush=True)
        for name, cpu in r["busiest_threads"]:
            print(f"    {cpu:6.2f} s  {name}")
    if args.out:
        args.out.write_text(json.dumps({"label": args.label, "env": {
            k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MKL_", "TOKENIZERS"))},
            "results": results}, indent=1))


if __name__ == "__main__":
    main()

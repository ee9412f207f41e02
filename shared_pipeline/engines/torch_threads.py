"""Torch's intra-op threads, thread by thread: all cores for generation, one for CPU stages.

Why (measured in docs/results/inprocess-tpot-2026-12-02): torch's OpenMP runtime (libgomp)
gives every thread that runs torch ops its own team of worker threads. The in-process reference
embeds queries (retrieve, rerank) in a stage worker thread and generates in the engine's thread,
so it held two teams: more libgomp threads than the machine's 2 cores. libgomp then cuts the
spin-wait of idle workers from about 300,000 to 100 spins, so the generator's worker falls asleep
between the hundreds of small parallel regions of each decode step and every region pays a
wake-up. With the engine alone TPOT rose from 64 to 93-101 ms with the embedder beside it
(OMP_WAIT_POLICY=PASSIVE, which always sleeps: 93 ms), while a KServe generator process holds
only the engine's team. With torch single-threaded in the CPU stages' threads every process of
every stack keeps one multi-threaded team, its generator's (61 ms).
"""

from __future__ import annotations

import sys


def pin_torch_threads(count: int) -> int:
    """Fix the calling thread's torch intra-op thread count at `count`; return it.

    Torch sizes a thread's pool once, at that thread's first torch call, from the process-wide
    value the latest `torch.set_num_threads` (in any thread) left. Making that first call here,
    then setting `count`, keeps later calls in other threads from changing this thread's.
    """
    import torch

    torch.get_num_threads()  # this thread's first torch call: its pool size is fixed now
    torch.set_num_threads(count)
    return torch.get_num_threads()


def single_threaded_torch() -> None:
    """Initializer of the CPU stages' worker threads: torch, where a stage uses it, on one thread.

    Only once torch is imported (a stage that embeds has loaded it by then); the route and
    post-process stages never import it for this. `torch.set_num_threads(1)` also becomes the
    process-wide default for threads that start torch later, which is why the generator pins its
    own count (`TransformersEngine`).
    """
    if "torch" in sys.modules:
        pin_torch_threads(1)

"""Torch threads per thread: CPU stages single-threaded, the generator's count pinned.

Why it matters (engines/torch_threads): two multi-threaded torch pools in one process on few
cores slowed in-process generation ~1.5x. No timing here: the thread counts torch reports.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import torch
from prometheus_client import CollectorRegistry

from shared_pipeline.engines.torch_threads import pin_torch_threads, single_threaded_torch
from shared_pipeline.entry import enter
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.pipeline import run_stage


def in_thread(fn: Callable[[], object]) -> object:
    """`fn()` in a new thread (a first torch call there), its result back."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


@pytest.fixture(autouse=True)
def restore_default():
    """Both tests leave torch's process-wide default at 1: put the starting value back."""
    default = torch.get_num_threads()
    yield
    in_thread(lambda: pin_torch_threads(default))


def test_a_sync_stage_runs_torch_on_one_thread(settings) -> None:
    """run_stage's worker thread reports 1 intra-op thread, and still runs real torch ops."""
    metrics = PipelineMetrics("inprocess", prometheus_instruments(CollectorRegistry()))
    state = enter({"messages": [{"role": "user", "content": "What is a list?"}]}, settings, "a")
    seen: dict[str, object] = {}

    def step(s):
        seen["threads"] = torch.get_num_threads()
        seen["thread"] = threading.current_thread().name
        seen["sum"] = float(torch.ones(4096).sum())
        return s

    assert asyncio.run(run_stage(metrics, "retrieve", step, state)) is state
    assert seen == {"threads": 1, "thread": seen["thread"], "sum": 4096.0}
    assert str(seen["thread"]).startswith("cpu-stage")
    assert [s.stage for s in state.timings] == ["retrieve"]  # inside its metrics


def test_a_pinned_thread_keeps_its_count_when_a_cpu_stage_sets_one() -> None:
    """The generator's pin survives a CPU stage's `set_num_threads(1)`, which an unpinned thread
    starting torch afterwards does not (that is why the engine pins)."""
    pinned, go, done = [], threading.Event(), threading.Event()

    def generator() -> None:
        pinned.append(pin_torch_threads(2))
        go.wait(30)
        torch.ones(4096).sum()  # a parallel op after the stage ran
        pinned.append(torch.get_num_threads())
        done.set()

    t = threading.Thread(target=generator)
    t.start()
    while not pinned:
        threading.Event().wait(0.01)

    def stage() -> int:
        single_threaded_torch()
        return torch.get_num_threads()

    assert in_thread(stage) == 1
    assert in_thread(torch.get_num_threads) == 1  # the process-wide default it left
    go.set()
    assert done.wait(30)
    t.join()
    assert pinned == [2, 2]

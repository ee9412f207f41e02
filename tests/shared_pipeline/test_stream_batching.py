"""`streaming.batched`: how the stacks' generators join text deltas before they cross a boundary.

The source is a generator that sleeps between deltas, on the real clock: the rule under test is
about time (the first at once, then at most one send per interval), so the gaps are chosen far
apart from the interval that a slow machine cannot blur which side of it a delta falls on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from shared_pipeline.streaming import batched


async def deltas(gaps_s: list[float]) -> AsyncIterator[str]:
    """One delta per gap, named by its index, each after sleeping its gap."""
    for i, gap in enumerate(gaps_s):
        await asyncio.sleep(gap)
        yield f"<{i}>"


async def collect(texts: AsyncIterator[str]) -> list[tuple[float, str]]:
    started = time.monotonic()
    return [(time.monotonic() - started, text) async for text in texts]


def test_the_first_delta_goes_at_once_and_later_ones_are_joined() -> None:
    # 10 deltas 5 ms apart, interval 1 s: the first alone, the other nine joined at the end.
    sent = asyncio.run(collect(batched(deltas([0.0] + [0.005] * 9), 1.0)))
    assert [text for _, text in sent] == ["<0>", "".join(f"<{i}>" for i in range(1, 10))]
    assert sent[0][0] < 0.5  # not held for the interval


def test_a_delta_after_a_long_gap_goes_on_alone_and_nothing_is_lost_or_reordered() -> None:
    # Gaps of 0, 5, 5 ms, then 400 ms (past the 200 ms interval), then 5 ms, 5 ms.
    sent = asyncio.run(collect(batched(deltas([0.0, 0.005, 0.005, 0.4, 0.005, 0.005]), 0.2)))
    texts = [text for _, text in sent]
    assert "".join(texts) == "".join(f"<{i}>" for i in range(6))
    assert texts == ["<0>", "<1><2><3>", "<4><5>"]  # <3> waited for a send; <4><5> flushed


def test_zero_interval_passes_every_delta_on() -> None:
    sent = asyncio.run(collect(batched(deltas([0.0, 0.001, 0.001]), 0.0)))
    assert [text for _, text in sent] == ["<0>", "<1>", "<2>"]


def test_an_empty_stream_sends_nothing() -> None:
    assert asyncio.run(collect(batched(deltas([]), 0.05))) == []

"""`twinserve demo`: sample questions through the in-process pipeline, as a table."""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.samples import load_questions
from shared_pipeline.schemas import parse_chat_request


async def _answer_all(settings: Settings, questions: list[str], console: Console) -> list[dict]:
    pipeline = InProcessPipeline(settings)
    with console.status(f"loading models ({pipeline.engine.name} engine)"):
        await pipeline.start()
    try:
        with console.status(f"answering {len(questions)} questions concurrently"):
            requests = [parse_chat_request({"messages": [{"role": "user", "content": q}]},
                                           settings) for q in questions]
            return await asyncio.gather(*(pipeline.answer(r) for r in requests))
    finally:
        await pipeline.stop()


def run_demo(settings: Settings, console: Console, count: int) -> None:
    questions = load_questions()[:count]
    started = time.perf_counter()
    results = asyncio.run(_answer_all(settings, [q.question for q in questions], console))
    table = Table(title=f"in-process pipeline · {settings.generate.engine_for('inprocess')} · "
                        f"{time.perf_counter() - started:.1f}s for {len(results)} questions",
                  show_lines=True)
    for column in ("question", "tier", "answer", "cited", "ms (retrieve/rerank/gen)"):
        table.add_column(column, overflow="fold")
    for q, r in zip(questions, results, strict=True):
        ext = r["pipeline"]
        t = ext["timings"]
        cited = ", ".join(sorted({c["title"] for c in ext["citations"]})) or "[yellow]none[/]"
        table.add_row(q.question, ext["tier"], r["choices"][0]["message"]["content"][:300], cited,
                      f"{t['retrieve']:.0f}/{t['rerank']:.0f}/{t['generate']:.0f}")
    console.print(table)

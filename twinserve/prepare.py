"""`twinserve prepare`: make the generator checkpoint and the retrieval index, once."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shared_pipeline import assets
from shared_pipeline.config import Settings


def prepare(settings: Settings, console: Console, force: bool = False) -> bool:
    """Build what is missing or stale; return True if anything was built."""
    passages = assets.passages_for(settings)
    model_ok = not force and assets.model_is_current(settings)
    index_ok = not force and assets.index_is_current(settings, passages)
    if model_ok and index_ok:
        console.print(f"[green]assets are current[/] in {settings.cache_dir} "
                      f"({len(passages)} passages); nothing to do")
        return False

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        if not model_ok:
            task = progress.add_task("generator: GGUF -> Hugging Face", total=2)
            started = time.perf_counter()
            assets.convert_gguf(settings, progress=lambda msg: (
                progress.update(task, advance=1, description=f"generator: {msg}")))
            progress.update(task, completed=2, description="generator checkpoint ready")
            console.log(f"converted {assets.GGUF_NAME} -> {settings.model_dir} "
                        f"in {time.perf_counter() - started:.0f}s")
        if not index_ok:
            task = progress.add_task("index", total=len(passages))
            started = time.perf_counter()
            assets.build_index(settings, passages,
                               progress=lambda msg: progress.update(task, description=msg),
                               on_batch=lambda n: progress.advance(task, n))
            progress.update(task, description="retrieval index ready")
            console.log(f"indexed {len(passages)} passages -> {assets.index_dir(settings)} "
                        f"in {time.perf_counter() - started:.0f}s")
    return True

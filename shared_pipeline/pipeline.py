"""The in-process runner: every stage in one process, no serving layer in between.

It is the zero-overhead reference every serving-overhead figure is measured against, and the
shape both stacks follow: each stage runs inside `metrics.stage(...)`, CPU-bound stages in a
worker thread so the event loop stays free, generation on the engine's own async API.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared_pipeline.config import TIERS, Settings
from shared_pipeline.engines.base import Engine, make_engine
from shared_pipeline.engines.torch_threads import single_threaded_torch
from shared_pipeline.entry import begin
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import (
    STAGES,
    ChatCompletionRequest,
    PipelineState,
    chat_completion,
)
from shared_pipeline.stages.generate import Generator
from shared_pipeline.stages.postprocess import PostProcessor
from shared_pipeline.stages.rerank import Reranker
from shared_pipeline.stages.retrieve import Retriever
from shared_pipeline.stages.route import Router
from shared_pipeline.streaming import content_chunks, final_chunk

# What a stage adapter runs on a state: a stage object's sync `run` (sent to a worker thread)
# or an async one (generation). Both stacks' `build(settings)` return one.
Step = Callable[[PipelineState], PipelineState | Awaitable[PipelineState]]

# The sync stages' worker threads (as many as asyncio's default executor has), in every stack:
# torch runs single-threaded in them, so a process's only multi-threaded torch pool is its
# generator's; two on 2 cores slowed in-process generation ~1.5x (engines/torch_threads).
CPU_STAGES = ThreadPoolExecutor(thread_name_prefix="cpu-stage", initializer=single_threaded_torch)


async def run_stage(metrics: PipelineMetrics, name: str, step: Step,
                    state: PipelineState) -> PipelineState:
    """Run one stage on `state` inside its metrics; sync stages go to a `CPU_STAGES` thread
    (with the caller's context, as `asyncio.to_thread` would)."""
    with metrics.stage(state, name):
        if inspect.iscoroutinefunction(step):
            return await step(state)
        call = functools.partial(contextvars.copy_context().run, step, state)
        return await asyncio.get_running_loop().run_in_executor(CPU_STAGES, call)


class InProcessPipeline:
    """retrieve -> rerank -> route -> generate -> post-process in one process."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 metrics: PipelineMetrics | None = None, stack: str = "inprocess") -> None:
        self.settings = settings
        self.revision = revision_of(settings)
        self.metrics = metrics or PipelineMetrics(stack, prometheus_instruments())
        self.retriever = Retriever(settings)
        self.reranker = Reranker(settings, index=self.retriever.index)
        self.router = Router(settings)
        # Tiers with the same engine and model share one engine in process (locally both serve
        # SmolLM2); tiers with their own model get their own. The stacks always run them as
        # separate servers/deployments. An `engine` passed in serves both tiers.
        self.engines: dict[tuple[str, str], Engine] = {}
        tier_engines: dict[str, Engine] = {}
        for tier in TIERS:
            key = (settings.generate.engine_for("inprocess", tier), settings.tier_model(tier))
            if engine is None and key not in self.engines:
                self.engines[key] = make_engine(settings, key[0], tier=tier)
            tier_engines[tier] = engine or self.engines[key]
        self.engine = tier_engines["small"]
        self.generators = {tier: Generator(settings, tier_engines[tier], tier, self.metrics)
                           for tier in TIERS}
        self.postprocessor = PostProcessor(settings)
        for stage in STAGES:
            self.metrics.revision(stage, self.revision)

    async def start(self) -> None:
        for engine in {id(g.engine): g.engine for g in self.generators.values()}.values():
            await engine.start()

    async def stop(self) -> None:
        for engine in {id(g.engine): g.engine for g in self.generators.values()}.values():
            await engine.stop()

    async def _prepare(self, state: PipelineState) -> PipelineState:
        for name, step in (("retrieve", self.retriever.run), ("rerank", self.reranker.run),
                           ("route", self.router.run)):
            state = await run_stage(self.metrics, name, step, state)
        return state

    async def run(self, request: ChatCompletionRequest,
                  request_id: str | None = None) -> PipelineState:
        return await self.run_state(begin(request, self.revision, request_id))

    async def run_state(self, state: PipelineState) -> PipelineState:
        """Every stage on a started state (`shared_pipeline.entry`), the answer in `answer`."""
        state = await self._prepare(state)
        state = await run_stage(self.metrics, "generate", self.generators[state.tier].run, state)
        state = await run_stage(self.metrics, "postprocess", self.postprocessor.finish, state)
        self.metrics.finished(state, 200)
        return state

    async def answer(self, request: ChatCompletionRequest,
                     request_id: str | None = None) -> dict[str, Any]:
        return chat_completion(await self.run(request, request_id))

    def stream(self, request: ChatCompletionRequest,
               request_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        return self.stream_state(begin(request, self.revision, request_id))

    async def stream_state(self, state: PipelineState) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk`s as tokens are made; the last carries citations and timings."""
        state = await self._prepare(state)
        with self.metrics.stage(state, "generate"):
            async for chunk in content_chunks(state, self.postprocessor,
                                              self.generators[state.tier].stream(state)):
                yield chunk
        state = await run_stage(self.metrics, "postprocess", self.postprocessor.finish, state)
        self.metrics.finished(state, 200)
        yield final_chunk(state)

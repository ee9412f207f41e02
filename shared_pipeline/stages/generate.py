"""Generate: build the chat prompt from the reranked passages and run the engine.

The stage is engine-agnostic (`Engine` protocol); each tier's generator owns one engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import Engine, SamplingParams
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.schemas import Completion, Document, PipelineState


def format_passages(docs: list[Document]) -> str:
    return "\n\n".join(f"[{i}] ({d.title}) {d.text}" for i, d in enumerate(docs, 1))


class Generator:
    """One tier's generator: prompt building, sampling parameters and token accounting."""

    def __init__(self, settings: Settings, engine: Engine, tier: str,
                 metrics: PipelineMetrics | None = None) -> None:
        self._settings = settings.generate
        self.engine = engine
        self.tier = tier
        self._metrics = metrics

    def build_prompt(self, state: PipelineState) -> str:
        system = self._settings.prompt_template.format(passages=format_passages(state.reranked))
        turns = [{"role": "system", "content": system}]
        turns += [m.model_dump() for m in state.request.messages if m.role != "system"]
        return self.engine.tokenizer.apply_chat_template(turns, tokenize=False,
                                                         add_generation_prompt=True)

    def sampling(self, state: PipelineState) -> SamplingParams:
        return SamplingParams.for_request(state.request, self._settings.default_max_tokens)

    async def stream(self, state: PipelineState) -> AsyncIterator[str]:
        """Yield text deltas; when the stream ends, `state.completion` holds the totals."""
        state.prompt = self.build_prompt(state)
        if self._settings.delay_ms:  # injected fault: a revision with a much slower generator
            await asyncio.sleep(self._settings.delay_ms / 1000)
        start = time.perf_counter()
        ttft = None
        parts: list[str] = []
        completion = Completion(engine=self.engine.name, model=self.engine.model_name)
        if self._metrics:
            self._metrics.queue_depth(self.tier, self.engine.queue_depth() + 1)
        try:
            async for delta in self.engine.stream(state.prompt, self.sampling(state),
                                                  state.request_id):
                if ttft is None and delta.completion_tokens > 0:
                    ttft = time.perf_counter() - start
                    if self._metrics:
                        self._metrics.queue_depth(self.tier, self.engine.queue_depth())
                parts.append(delta.text)
                completion.prompt_tokens = delta.prompt_tokens
                completion.completion_tokens = delta.completion_tokens
                completion.finish_reason = delta.finish_reason or completion.finish_reason
                if delta.text:
                    yield delta.text
        finally:
            if self._metrics:
                self._metrics.queue_depth(self.tier, self.engine.queue_depth())
        completion.text = "".join(parts)
        completion.ttft_s = ttft
        state.completion = completion
        if self._metrics:
            self._metrics.generation(self.tier, completion.prompt_tokens,
                                     completion.completion_tokens, ttft,
                                     time.perf_counter() - start)

    async def run(self, state: PipelineState) -> PipelineState:
        async for _ in self.stream(state):
            pass
        return state

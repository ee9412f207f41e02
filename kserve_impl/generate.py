"""A generator InferenceService (one per tier): transformers with dynamic micro-batching.

Both tiers run the KServe stack's engine (transformers, unless `generate.engine` asks for another
for engine parity), one server each, so they scale separately; locally both may serve the same
small model.
"""

from __future__ import annotations

import asyncio

from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings, Tier
from shared_pipeline.engines.base import Engine, make_engine
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.generate import Generator


class GeneratorModel(StageModel):
    stage = "generate"

    def __init__(self, name: str, settings: Settings, metrics: PipelineMetrics,
                 tier: Tier) -> None:
        super().__init__(name, settings, metrics)
        self.tier = tier
        self.engine: Engine | None = None

    def build(self, settings: Settings) -> Step:
        # This tier's engine over this tier's model (generate.tiers.<tier>).
        self.engine = make_engine(settings, settings.generate.engine_for("kserve", self.tier),
                                  tier=self.tier)
        # load() runs before the server's event loop exists. A private loop (not asyncio.run,
        # which leaves the main thread without a current loop, and ModelServer.start needs one)
        # loads the weights; the engine's batching thread outlives it and serves jobs from
        # whichever loop submits them.
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.engine.start())
        finally:
            loop.close()
        return Generator(settings, self.engine, self.tier, self.metrics).run

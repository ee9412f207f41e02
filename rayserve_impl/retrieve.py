"""The retrieve stage as a Serve deployment: hybrid BM25 + dense search over the shared index."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import run_stage
from shared_pipeline.schemas import PipelineState
from shared_pipeline.stages.retrieve import Retriever


@serve.deployment(name="retriever")
class RetrieverDeployment(StageDeployment):
    """Wraps `Retriever`; search is CPU work, so `run_stage` runs it in a worker thread."""

    stage = "retrieve"

    def build(self, settings: Settings) -> None:
        previous = getattr(self, "retriever", None)
        self.retriever = Retriever(settings, index=previous.index if previous else None)

    async def run(self, state: PipelineState) -> PipelineState:
        return await run_stage(self.metrics, self.stage, self.retriever.run, state)

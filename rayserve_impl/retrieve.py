"""The retrieve stage as a Serve deployment: hybrid BM25 + dense search over the shared index."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.retrieve import Retriever


@serve.deployment(name="retriever")
class RetrieverDeployment(StageDeployment):
    """Wraps `Retriever`; search is CPU work, so `run_stage` runs it in a worker thread."""

    stage = "retrieve"

    def build(self, settings: Settings) -> Step:
        previous = getattr(self, "retriever", None)
        self.retriever = Retriever(settings, index=previous.index if previous else None)
        return self.retriever.run

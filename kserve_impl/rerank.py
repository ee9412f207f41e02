"""The reranker InferenceService: scores the retrieved passages and keeps the best few."""

from __future__ import annotations

from kserve_impl.stage_model import StageModel, Step
from shared_pipeline.stages.rerank import Reranker


class RerankModel(StageModel):
    stage = "rerank"

    def build(self) -> Step:
        return Reranker(self.settings).run

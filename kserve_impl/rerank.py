"""The reranker InferenceService: scores the retrieved passages and keeps the best few."""

from __future__ import annotations

from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.rerank import Reranker


class RerankerModel(StageModel):
    stage = "rerank"

    def build(self, settings: Settings) -> Step:
        return Reranker(settings).run

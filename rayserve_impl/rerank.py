"""The rerank stage as a Serve deployment: keeps the best passages for the prompt."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.index import PassageIndex
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.rerank import Reranker


@serve.deployment(name="reranker")
class RerankerDeployment(StageDeployment):
    """Wraps `Reranker` (dense cosine, or a CrossEncoder when configured) in a worker thread."""

    stage = "rerank"

    def build(self, settings: Settings) -> Step:
        if getattr(self, "index", None) is None and not settings.rerank.cross_encoder:
            self.index = PassageIndex(settings)  # loaded once; kept across reconfigures
        self.reranker = Reranker(settings, index=getattr(self, "index", None))
        return self.reranker.run

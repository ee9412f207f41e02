"""The postprocessor InferenceService: the graph's last step, where the OpenAI answer goes out."""

from __future__ import annotations

from typing import Any

from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.schemas import PipelineState, chat_completion
from shared_pipeline.stages.postprocess import PostProcessor


class PostProcessorModel(StageModel):
    """Cleans the completion, attaches citations, answers the `chat.completion`."""

    stage = "postprocess"

    def build(self, settings: Settings) -> Step:
        return PostProcessor(settings).finish

    def answer(self, state: PipelineState) -> dict[str, Any]:
        self.metrics.finished(state, 200)  # the request ends here
        return chat_completion(state)

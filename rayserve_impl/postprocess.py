"""The post-process stage as a Serve deployment: the last stage, so it counts the request."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.schemas import PipelineState
from shared_pipeline.stages.postprocess import PostProcessor


@serve.deployment(name="postprocessor")
class PostProcessorDeployment(StageDeployment):
    """Wraps `PostProcessor.finish` (clean, limit, cite) and records the finished request.

    Streaming answers get per-chunk cleaning at the ingress (`PostProcessor.clean_delta`, cheap
    and stateless) and come here once at the end, like non-streaming ones.
    """

    stage = "postprocess"

    def build(self, settings: Settings) -> Step:
        self.postprocessor = PostProcessor(settings)
        return self.postprocessor.finish

    async def run(self, state: PipelineState) -> PipelineState:
        state = await super().run(state)
        self.metrics.finished(state, 200)  # the request ends here
        return state

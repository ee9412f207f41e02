"""The route stage as a Serve deployment: picks the generator tier and says why."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import run_stage
from shared_pipeline.schemas import PipelineState
from shared_pipeline.stages.route import Router


@serve.deployment(name="router")
class RouterDeployment(StageDeployment):
    """Wraps `Router`; its thresholds are live (`user_config`): a rule change restarts nothing."""

    stage = "route"

    def build(self, settings: Settings) -> None:
        self.router = Router(settings)

    async def run(self, state: PipelineState) -> PipelineState:
        return await run_stage(self.metrics, self.stage, self.router.run, state)

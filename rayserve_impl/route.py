"""The route stage as a Serve deployment: picks the generator tier and says why."""

from __future__ import annotations

from ray import serve

from rayserve_impl.stage import StageDeployment
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.route import Router


@serve.deployment(name="router")
class RouterDeployment(StageDeployment):
    """Wraps `Router`; its thresholds are live (`user_config`): a rule change restarts nothing."""

    stage = "route"

    def build(self, settings: Settings) -> Step:
        self.router = Router(settings)
        return self.router.run

"""What every stage deployment shares: settings, in-place `user_config`, revision, metrics, run.

The mirror of KServe's `StageModel`: a subclass names its stage and says how to build it
(`build(settings) -> Step`, the callable that runs the shared_pipeline stage on a state); this base
runs that step inside the stage's metrics (`run`), re-builds it when `user_config` changes and
reports the new revision, so a `serve deploy` that only changes `user_config` is visible in every
answer and in `pipeline_revision_info`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rayserve_impl.live_config import apply_user_config
from rayserve_impl.metrics import pipeline_metrics
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step, run_stage
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import PipelineState


class StageDeployment:
    """Base of the stage deployments (not a deployment itself)."""

    stage: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.base_settings = settings
        self.metrics = pipeline_metrics()
        self._configure(settings)

    def build(self, settings: Settings) -> Step:
        """Build the stage from `settings` and return the callable that runs it; when
        rebuilding (a `user_config` change), keep the heavy parts (index, models) loaded."""
        raise NotImplementedError

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        previous, self.revision = getattr(self, "revision", None), revision_of(settings)
        self._step = self.build(settings)
        self.metrics.revision(self.stage, self.revision, previous=previous)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this at start and on every `user_config` change (no replica restart)."""
        self._configure(apply_user_config(self.base_settings, user_config))

    async def run(self, state: PipelineState) -> PipelineState:
        """The stage on one state; CPU stages run in a worker thread, off the replica's loop."""
        return await run_stage(self.metrics, self.stage, self._step, state)

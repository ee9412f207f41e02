"""The router InferenceService: picks the tier the graph's Switch node matches on.

Its answer is the `PipelineState` JSON, whose top-level `tier` ("small" or "large") is what the
Switch conditions in `manifests/kserve/inferencegraph.yaml` test (`[@this].#(tier=="small")`).
"""

from __future__ import annotations

from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings
from shared_pipeline.pipeline import Step
from shared_pipeline.stages.route import Router


class RouterModel(StageModel):
    stage = "route"

    def build(self, settings: Settings) -> Step:
        return Router(settings).run

"""The router InferenceService: picks the tier the graph's Switch node matches on.

Its answer is the `PipelineState` JSON, whose top-level `tier` ("small" or "large") is what the
Switch conditions in `manifests/kserve/inferencegraph.yaml` test (`[@this].#(tier=="small")`).
"""

from __future__ import annotations

from kserve_impl.stage_model import StageModel, Step
from shared_pipeline.stages.route import Router


class RouteModel(StageModel):
    stage = "route"

    def build(self) -> Step:
        return Router(self.settings).run

"""`GET /v1/models`: the one model clients ask for (`pipeline`), and what serves each tier.

Clients always send `model: "pipeline"` (the route stage picks the tier); the `pipeline`
extension of the model card says which model and engine each tier runs, as every answer's
`pipeline.model` says which one answered.
"""

from __future__ import annotations

from typing import Any

from shared_pipeline.config import TIERS, Settings
from shared_pipeline.schemas import PIPELINE_MODEL


def tier_models(settings: Settings, stack: str) -> dict[str, dict[str, str]]:
    """tier -> {model (served name), engine}, as `stack` runs them."""
    return {tier: {"model": settings.served_model_name(tier),
                   "engine": settings.generate.engine_for(stack, tier)} for tier in TIERS}


def models_list(settings: Settings, stack: str) -> dict[str, Any]:
    card = {"id": PIPELINE_MODEL, "object": "model", "owned_by": "twinserve", "created": 0,
            "pipeline": {"tiers": tier_models(settings, stack)}}
    return {"object": "list", "data": [card]}

"""Route: pick the generator tier with a rule a person can read, and record why.

Order of the rule: a tier forced by the request wins; then weak evidence (best rerank score under
`min_evidence_score`) goes large, since a small model does worst without good context; then long
or comparative questions go large; everything else stays small.
"""

from __future__ import annotations

from shared_pipeline.config import RouteSettings, Settings, Tier
from shared_pipeline.schemas import PipelineState


def choose_tier(query: str, best_score: float | None, forced: Tier | None,
                rule: RouteSettings) -> tuple[Tier, str]:
    if forced is not None:
        return forced, f"forced by request: pipeline.tier={forced}"
    if best_score is None:
        return "large", "no passage retrieved"
    if best_score < rule.min_evidence_score:
        return "large", (f"weak evidence: best rerank score {best_score:.2f} "
                         f"< {rule.min_evidence_score}")
    words = len(query.split())
    if words >= rule.long_query_words:
        return "large", f"long question: {words} words >= {rule.long_query_words}"
    lowered = f" {query.lower()} "
    for marker in rule.complex_markers:
        if marker in lowered:
            return "large", f"complex question: contains {marker.strip()!r}"
    return "small", f"short question with good evidence (best score {best_score:.2f})"


class Router:
    def __init__(self, settings: Settings) -> None:
        self._rule = settings.route

    def run(self, state: PipelineState) -> PipelineState:
        best = max((d.score for d in state.reranked), default=None)
        state.tier, state.tier_reason = choose_tier(state.query, best, state.request.pipeline.tier,
                                                    self._rule)
        return state

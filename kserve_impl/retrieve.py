"""The retriever InferenceService: the graph's first step, where the OpenAI request comes in.

Behind the orchestrating entry (`kserve_impl.orchestrator`) the request has already entered
there, so the retriever is sent the started `PipelineState` instead (recognised by its
`request_id` and `request` fields) and validates it like every later stage.
"""

from __future__ import annotations

from typing import Any

from kserve_impl.errors import StageError
from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings
from shared_pipeline.entry import enter
from shared_pipeline.pipeline import Step
from shared_pipeline.schemas import PipelineState, RequestError
from shared_pipeline.stages.retrieve import Retriever

STREAM_REFUSED = ("stream=true is not available through the KServe InferenceGraph: its router "
                  "buffers every step's whole response, so the answer can only arrive at once; "
                  "send stream=false")


class RetrieverModel(StageModel):
    """Validates the raw chat-completions body, starts the `PipelineState`, retrieves passages."""

    stage = "retrieve"

    def build(self, settings: Settings) -> Step:
        return Retriever(settings).run

    def read_state(self, payload: Any, headers: dict[str, str]) -> PipelineState:
        if isinstance(payload, dict) and {"request_id", "request"} <= payload.keys():
            return super().read_state(payload, headers)  # from the orchestrator: streams
        try:
            state = enter(payload, self.settings, self.revision, headers.get("x-request-id"))
        except RequestError as exc:
            raise StageError(exc) from None
        if state.request.stream:
            raise StageError(RequestError(400, STREAM_REFUSED, "stream"))
        return state

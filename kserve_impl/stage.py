"""`StageModel`: what every KServe stage server shares (load, validate, run, answer).

A stage server is one `kserve.Model` in one `kserve.ModelServer`, one InferenceService on a
cluster. Its v1 `:predict` body is the `PipelineState` JSON the previous graph step returned (the
router forwards it with `data: $response`), and it answers the state extended by its stage. The
subclasses only say which shared_pipeline stage they build (`build(settings) -> Step`, the same
contract as `rayserve_impl.stage.StageDeployment`), and the first and last steps how the OpenAI
request comes in and the OpenAI answer goes out.
"""

from __future__ import annotations

from typing import Any, ClassVar

import kserve
from pydantic import ValidationError

from kserve_impl.errors import StageError
from shared_pipeline.config import Settings
from shared_pipeline.errors import error_answer
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.pipeline import Step, run_stage
from shared_pipeline.revision import revision_of
from shared_pipeline.schemas import PipelineState, RequestError


class StageModel(kserve.Model):
    """One pipeline stage as a KServe model.

    Args:
        name: the model name (`--model_name`; the InferenceGraph's serviceName resolves to
            `/v1/models/<name>:predict`).
        settings: the pipeline settings.
        metrics: the process's `PipelineMetrics("kserve", ...)`.
    """

    stage: ClassVar[str]

    def __init__(self, name: str, settings: Settings, metrics: PipelineMetrics) -> None:
        super().__init__(name)
        self.settings = settings
        self.metrics = metrics
        self.revision = revision_of(settings)
        self._step: Step | None = None

    def build(self, settings: Settings) -> Step:
        """Load the stage's models for `settings`; return the callable that runs it on a state."""
        raise NotImplementedError

    def load(self) -> bool:
        self._step = self.build(self.settings)
        self.metrics.revision(self.stage, self.revision)
        self.ready = True
        return self.ready

    def validate(self, payload: Any) -> Any:
        # KServe's v1 check only looks at "instances"; the state is validated in `read_state`,
        # where a failure gets the OpenAI error body instead of KServe's.
        return payload

    def read_state(self, payload: Any, headers: dict[str, str]) -> PipelineState:
        """The incoming `PipelineState`; a malformed one is a 400 naming the field."""
        try:
            return PipelineState.model_validate(payload)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            raise StageError(RequestError(
                400, f"{self.stage}: expected a pipeline state; {where}: {err['msg']}",
                where)) from None

    def answer(self, state: PipelineState) -> dict[str, Any]:
        """The response body: the state for the next step (the last step overrides this)."""
        return state.model_dump(mode="json")

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        state = self.read_state(payload, headers or {})
        assert self._step is not None, "KServe registers a model only once load() made it ready"
        try:
            # CPU stages go to a worker thread inside run_stage; the event loop stays free.
            state = await run_stage(self.metrics, self.stage, self._step, state)
        except StageError:
            raise
        except Exception as exc:  # the shared table: overload 503, anything else a generic 500
            error, error_headers = error_answer(exc, state.request_id, where=self.stage)
            raise StageError(error, state, error_headers) from None
        return self.answer(state)

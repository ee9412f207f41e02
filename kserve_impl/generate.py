"""A generator InferenceService (one per tier): transformers with dynamic micro-batching.

Both tiers run the KServe stack's engine (transformers, unless `generate.engine` asks for another
for engine parity), one server each, so they scale separately; locally both may serve the same
small model.

Streaming (the orchestrated topology): when the state asks for `stream`, `predict` returns an
async iterator, which KServe's v1 endpoint sends as a `StreamingResponse`. The wire format is
NDJSON (`STREAM_MEDIA_TYPE`), one object a line: `{"delta": "<text>"}` per text delta as the
engine makes it (joined per `generate.stream_batch_ms`, as the Ray generator joins its deltas),
then `{"state": <PipelineState>}` with the completion totals and this stage's stamp, or
`{"error": <OpenAI error object>}` if generation fails after the first line. The first delta is
awaited before answering, so a full queue is still a 503 with `Retry-After`, not a 200 whose
stream fails. A caller that closes the stream cancels the iterator, which stops the row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from kserve_impl.errors import StageError
from kserve_impl.stage import StageModel
from shared_pipeline.config import Settings, Tier
from shared_pipeline.engines.base import Engine, make_engine
from shared_pipeline.errors import error_answer
from shared_pipeline.metrics import PipelineMetrics
from shared_pipeline.pipeline import Step
from shared_pipeline.schemas import PipelineState
from shared_pipeline.stages.generate import Generator
from shared_pipeline.streaming import batched

STREAM_MEDIA_TYPE = "application/x-ndjson"


def ndjson(obj: dict[str, Any]) -> bytes:
    """One line of the generator's stream."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class GeneratorModel(StageModel):
    stage = "generate"

    def __init__(self, name: str, settings: Settings, metrics: PipelineMetrics,
                 tier: Tier) -> None:
        super().__init__(name, settings, metrics)
        self.tier = tier
        self.engine: Engine | None = None

    def build(self, settings: Settings) -> Step:
        # This tier's engine over this tier's model (generate.tiers.<tier>).
        self.engine = make_engine(settings, settings.generate.engine_for("kserve", self.tier),
                                  tier=self.tier)
        # load() runs before the server's event loop exists. A private loop (not asyncio.run,
        # which leaves the main thread without a current loop, and ModelServer.start needs one)
        # loads the weights; the engine's batching thread outlives it and serves jobs from
        # whichever loop submits them.
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.engine.start())
        finally:
            loop.close()
        self.generator = Generator(settings, self.engine, self.tier, self.metrics)
        return self.generator.run

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        state = self.read_state(payload, headers or {})
        if not state.request.stream:
            return await super().predict(payload, headers)
        lines = self._lines(state)
        try:  # the first line (or the refusal) before the response starts
            first = await lines.__anext__()
        except StageError:
            raise
        except Exception as exc:  # the shared table: a full queue is a 503 + Retry-After
            error, error_headers = error_answer(exc, state.request_id, where=self.stage)
            raise StageError(error, state, error_headers) from None
        return _chain(first, lines)

    async def _lines(self, state: PipelineState) -> AsyncIterator[bytes]:
        """NDJSON lines: deltas inside this stage's metrics, then the final state."""
        with self.metrics.stage(state, self.stage):
            interval_s = self.settings.generate.stream_batch_ms / 1000
            async for text in batched(self.generator.stream(state), interval_s):
                yield ndjson({"delta": text})
        yield ndjson({"state": state.model_dump(mode="json")})


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The awaited first line, then the rest; a later failure is one `error` line."""
    yield first
    try:
        async for line in rest:
            yield line
    except Exception as exc:  # the status is sent: the error travels in the stream
        error, _ = error_answer(exc, where="generate stream")
        yield ndjson(error.to_body())
    finally:
        await rest.aclose()  # a cancelled response stops the engine's row

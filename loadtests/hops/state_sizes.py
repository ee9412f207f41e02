"""The real `PipelineState` at each hop: what the pipeline sends between its stages.

The stages run in this process as the in-process pipeline runs them (`run_stage`, stamped by
`PipelineMetrics.stage`), on one shipped sample question, except the generator: building the
prompt needs only the tokenizer, and the completion is a stand-in of `default_max_tokens` tokens
cut from the top passage, so no engine starts. After each stage the state's JSON size (the body
of the next KServe step) and its pickled size (what a Ray handle call carries by default) are
recorded.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

from prometheus_client import CollectorRegistry

from shared_pipeline.config import Settings
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.pipeline import run_stage
from shared_pipeline.samples import load_questions
from shared_pipeline.schemas import Completion, PipelineState, parse_chat_request
from shared_pipeline.stages.generate import Generator
from shared_pipeline.stages.postprocess import PostProcessor
from shared_pipeline.stages.rerank import Reranker
from shared_pipeline.stages.retrieve import Retriever
from shared_pipeline.stages.route import Router

CHARS_PER_TOKEN = 4  # for the stand-in completion's length only


class _TokenizerOnly:
    """What `Generator.build_prompt` needs of an engine: its tokenizer."""

    name = "none (prompt only)"

    def __init__(self, settings: Settings) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(settings.model_dir)


def _sizes(after: str, state: PipelineState) -> dict[str, Any]:
    return {"after": after, "json_bytes": len(state.model_dump_json().encode()),
            "pickle_bytes": len(pickle.dumps(state)), "retrieved": len(state.retrieved),
            "reranked": len(state.reranked)}


async def _measure(settings: Settings, question: str) -> list[dict[str, Any]]:
    # A private registry: the recorder must not clash with one already in this process.
    metrics = PipelineMetrics("inprocess", prometheus_instruments(CollectorRegistry()))
    request = parse_chat_request({"model": "pipeline",
                                  "messages": [{"role": "user", "content": question}]}, settings)
    state = PipelineState.start(request)
    rows = [_sizes("request (state at retrieve's entry)", state)]
    retriever = Retriever(settings)
    for name, step in (("retrieve", retriever.run),
                       ("rerank", Reranker(settings, index=retriever.index).run),
                       ("route", Router(settings).run)):
        state = await run_stage(metrics, name, step, state)
        rows.append(_sizes(name, state))
    generator = Generator(settings, _TokenizerOnly(settings), state.tier or "small")
    with metrics.stage(state, "generate"):
        state.prompt = generator.build_prompt(state)
        tokens = settings.generate.default_max_tokens
        text = (state.reranked[0].text if state.reranked else "x")[: tokens * CHARS_PER_TOKEN]
        state.completion = Completion(
            text=text, prompt_tokens=len(generator.engine.tokenizer(state.prompt).input_ids),
            completion_tokens=tokens, finish_reason="length", engine="stand-in")
    rows.append(_sizes("generate", state))
    state = await run_stage(metrics, "postprocess", PostProcessor(settings).finish, state)
    rows.append(_sizes("postprocess", state))
    return rows


def pipeline_state_sizes(settings: Settings | None = None,
                         question: str | None = None) -> dict[str, Any]:
    """{question, hops: [{after, json_bytes, pickle_bytes, ...}]} for one sample question."""
    settings = settings or Settings()
    question = question or load_questions()[0].question
    return {"question": question, "hops": asyncio.run(_measure(settings, question))}

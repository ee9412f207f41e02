"""The shipped question set: demo questions, retrieval-recall labels and the load-test mix."""

from __future__ import annotations

import json
from importlib.resources import files

from pydantic import BaseModel


class SampleQuestion(BaseModel):
    question: str
    topic: str  # the pydoc topic key whose passages answer it


def load_questions() -> list[SampleQuestion]:
    text = files("shared_pipeline").joinpath("data/questions.jsonl").read_text(encoding="utf-8")
    return [SampleQuestion.model_validate(json.loads(line)) for line in text.splitlines() if line]

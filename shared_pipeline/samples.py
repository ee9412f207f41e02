"""The shipped question set: demo questions, retrieval-recall labels and the load-test mix."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel


class SampleQuestion(BaseModel):
    question: str
    topic: str  # the pydoc topic key whose passages answer it
    # "tuning": questions the retrieval settings were chosen on; "heldout": written after, and
    # only measured, so their recall says how the settings generalise.
    split: Literal["tuning", "heldout"] = "tuning"


def load_questions(split: str | None = None) -> list[SampleQuestion]:
    """The shipped questions, all of them or one `split`."""
    text = files("shared_pipeline").joinpath("data/questions.jsonl").read_text(encoding="utf-8")
    questions = [SampleQuestion.model_validate(json.loads(line))
                 for line in text.splitlines() if line]
    return [q for q in questions if split is None or q.split == split]

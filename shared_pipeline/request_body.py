"""The chat-completion request body a client sends to any stack.

One builder for the CLI (`twinserve ask`) and the experiments (the after-overload check), so
both send exactly what a user's OpenAI client would: `model`, `messages`, `stream`,
`temperature`, optional `max_tokens` and the `pipeline: {tier}` extension.
"""

from __future__ import annotations

from typing import Any

from shared_pipeline.schemas import PIPELINE_MODEL


def build_body(question: str, max_tokens: int | None, tier: str | None, stream: bool,
               temperature: float = 0.0) -> dict[str, Any]:
    """One user question as an OpenAI chat-completion body for the `pipeline` model."""
    body: dict[str, Any] = {"model": PIPELINE_MODEL, "stream": stream, "temperature": temperature,
                            "messages": [{"role": "user", "content": question}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tier is not None:
        body["pipeline"] = {"tier": tier}
    return body

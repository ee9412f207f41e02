"""The OpenAI request fields, as data: what every stack must accept and what it must refuse.

Shared so that the schema tests (tests/shared_pipeline/test_schemas_openai_fields.py) and the
HTTP parity tests send the same table to every stack. `ACCEPTED` bodies parse (and answer 200);
each `REFUSED` row is (body, status, param): the error body must name `param`.
"""

from __future__ import annotations

from typing import Any

QUESTION = [{"role": "user", "content": "What does the pass statement do?"}]


def body(**fields: Any) -> dict[str, Any]:
    """A small valid request with `fields` added or replaced."""
    return {"model": "pipeline", "messages": QUESTION, "max_tokens": 4, **fields}


# id -> body that every stack accepts.
ACCEPTED: dict[str, dict[str, Any]] = {
    "content-text-parts": body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What does the pass"},
        {"type": "text", "text": "statement do?"}]}]),
    "role-developer": body(messages=[{"role": "developer", "content": "Be brief."}, *QUESTION]),
    "role-system": body(messages=[{"role": "system", "content": "Be brief."}, *QUESTION]),
    "role-assistant": body(messages=[*QUESTION, {"role": "assistant", "content": "It does "
                                                 "nothing."}, *QUESTION]),
    "stop-string": body(stop="\n"),
    "stop-list": body(stop=["\n", ".", "!", "?"]),
    "stop-null": body(stop=None),
    "presence-penalty-0": body(presence_penalty=0),
    "frequency-penalty-0": body(frequency_penalty=0.0),
    "presence-penalty-honoured": body(presence_penalty=0.5),
    "frequency-penalty-honoured": body(frequency_penalty=-0.5),
    "logprobs-false": body(logprobs=False),
    "top-logprobs-0": body(top_logprobs=0),
    "response-format-text": body(response_format={"type": "text"}),
    "parallel-tool-calls": body(parallel_tool_calls=True),
    "tool-choice-none": body(tool_choice="none"),
    "tools-empty": body(tools=[]),
    "metadata": body(metadata={"team": "search"}),
    "store-false": body(store=False),
    "n-1": body(n=1),
    "ignore-eos": body(ignore_eos=True),
    "stream-options-usage": body(stream=True, stream_options={"include_usage": True}),
    "max-completion-tokens": {"model": "pipeline", "messages": QUESTION,
                              "max_completion_tokens": 4},
    "user": body(user="user-42"),
    "seed": body(seed=7),
}

_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
_TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}

# id -> (body, status, param named in the error).
REFUSED: dict[str, tuple[dict[str, Any], int, str]] = {
    "content-image-part": (body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, _IMAGE]}]), 400, "messages.0.content.1.type"),
    "content-part-no-text": (body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
                             400, "messages.0.content.0.text"),
    "content-empty-parts": (body(messages=[{"role": "user", "content": []}]), 400,
                            "messages.0.content"),
    "content-number": (body(messages=[{"role": "user", "content": 5}]), 400,
                       "messages.0.content"),
    "role-tool": (body(messages=[*QUESTION, {"role": "tool", "content": "42"}]), 400,
                  "messages.1.role"),
    "stop-five": (body(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    "stop-empty": (body(stop=""), 400, "stop"),
    "stop-number": (body(stop=5), 400, "stop"),
    "presence-penalty-range": (body(presence_penalty=2.5), 400, "presence_penalty"),
    "frequency-penalty-type": (body(frequency_penalty="high"), 400, "frequency_penalty"),
    "logprobs-true": (body(logprobs=True), 400, "logprobs"),
    "top-logprobs": (body(logprobs=False, top_logprobs=3), 400, "top_logprobs"),
    "tools": (body(tools=[_TOOL]), 400, "tools"),
    "tool-choice-auto": (body(tool_choice="auto"), 400, "tool_choice"),
    "response-format-json-object": (body(response_format={"type": "json_object"}), 400,
                                    "response_format.type"),
    "response-format-json-schema": (body(response_format={
        "type": "json_schema", "json_schema": {"name": "a", "schema": {}}}), 400,
        "response_format.type"),
    "n-2": (body(n=2), 400, "n"),
    "store-true": (body(store=True), 400, "store"),
    "metadata-not-strings": (body(metadata={"k": 1}), 400, "metadata.k"),
    "stream-options-unknown": (body(stream=True, stream_options={"include_usage": True,
                                                                 "x": 1}), 400,
                               "stream_options.x"),
    "unknown-field": (body(best_of=2), 400, "best_of"),
    "unknown-model": (body(model="gpt-4"), 404, "model"),
}

# /v1/completions: a `prompt` answered as the question; the sampling fields as in chat.
PROMPT = "What does the pass statement do?"


def completion_body(**fields: Any) -> dict[str, Any]:
    """A small valid completions request with `fields` added or replaced."""
    return {"model": "pipeline", "prompt": PROMPT, "max_tokens": 4, **fields}


COMPLETION_ACCEPTED: dict[str, dict[str, Any]] = {
    "completion-prompt": completion_body(),
    "completion-prompt-list-of-one": completion_body(prompt=[PROMPT]),
    "completion-sampling": completion_body(temperature=0.5, top_p=0.9, seed=7, stop=["\n"]),
    "completion-neutral": completion_body(echo=False, n=1, logprobs=None, ignore_eos=True,
                                          repetition_penalty=1.0),
    # what `vllm bench serve --backend openai` sends (stream=false so it answers whole)
    "completion-vllm-bench": completion_body(repetition_penalty=1.0, logprobs=None,
                                             stream_options={"include_usage": True}),
}

COMPLETION_REFUSED: dict[str, tuple[dict[str, Any], int, str]] = {
    "completion-no-prompt": ({"model": "pipeline", "max_tokens": 4}, 400, "prompt"),
    "completion-empty-prompt": (completion_body(prompt=""), 400, "prompt"),
    "completion-two-prompts": (completion_body(prompt=[PROMPT, PROMPT]), 400, "prompt"),
    "completion-token-ids": (completion_body(prompt=[[1, 2, 3]]), 400, "prompt.0"),
    "completion-prompt-too-long": (completion_body(prompt="x" * 10**6), 400, "prompt"),
    "completion-echo": (completion_body(echo=True), 400, "echo"),
    "completion-n-2": (completion_body(n=2), 400, "n"),
    "completion-logprobs": (completion_body(logprobs=1), 400, "logprobs"),
    "completion-repetition-penalty": (completion_body(repetition_penalty=1.2), 400,
                                      "repetition_penalty"),
    "completion-messages": (completion_body(messages=QUESTION), 400, "messages"),
    "completion-max-tokens-type": (completion_body(max_tokens="ten"), 400, "max_tokens"),
    "completion-temperature": (completion_body(temperature=7), 400, "temperature"),
    "completion-unknown-model": (completion_body(model="gpt-4"), 404, "model"),
}

"""Request validation: every bad request names its field; good ones parse."""

from __future__ import annotations

import pytest

from shared_pipeline.config import Settings
from shared_pipeline.schemas import (
    PipelineState,
    RequestError,
    chat_chunk,
    chat_completion,
    parse_chat_request,
)

SETTINGS = Settings(max_input_chars=200)
GOOD = {"model": "pipeline", "messages": [{"role": "user", "content": "What is a lambda?"}]}


def refused(payload) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_chat_request(payload, SETTINGS)
    return info.value


def test_good_request_parses() -> None:
    request = parse_chat_request({**GOOD, "max_tokens": 16, "pipeline": {"tier": "large"}},
                                 SETTINGS)
    assert request.query == "What is a lambda?"
    assert request.requested_tokens == 16
    assert request.pipeline.tier == "large"


@pytest.mark.parametrize(("payload", "param", "words"), [
    ({**GOOD, "messages": []}, "messages", "at least 1"),
    ({"model": "pipeline"}, "messages", "required"),
    ({**GOOD, "messages": "hello"}, "messages", "list"),
    ({**GOOD, "messages": [{"role": "user", "content": 5}]}, "messages.0.content", "string"),
    ({**GOOD, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", "user"),
    ({**GOOD, "messages": [{"role": "system", "content": "be brief"}]}, "messages",
     "user message"),
    ({**GOOD, "max_tokens": 0}, "max_tokens", "greater than 0"),
    ({**GOOD, "max_tokens": -3}, "max_tokens", "greater than 0"),
    ({**GOOD, "max_tokens": "12"}, "max_tokens", "integer"),
    ({**GOOD, "max_tokens": 100_000}, "max_tokens", "model limit 2048"),
    ({**GOOD, "max_completion_tokens": 4096}, "max_completion_tokens", "model limit"),
    ({**GOOD, "temperature": "hot"}, "temperature", "number"),
    ({**GOOD, "temperature": 3.5}, "temperature", "less than or equal to 2"),
    ({**GOOD, "stream": "yes"}, "stream", "boolean"),
    ({**GOOD, "n": 3}, "n", "less than or equal to 1"),
    ({**GOOD, "pipeline": {"tier": "huge"}}, "pipeline.tier", "small"),
    ({**GOOD, "pipeline": {"top_k": 0}}, "pipeline.top_k", "greater than 0"),
    ({**GOOD, "logprobs": True}, "logprobs", "not permitted"),
    ({**GOOD, "messages": [{"role": "user", "content": "x" * 201}]}, "messages", "limit is 200"),
])
def test_bad_request_names_field(payload, param, words) -> None:
    error = refused(payload)
    assert error.status == 400
    assert error.param == param
    assert words in error.message
    body = error.to_body()["error"]
    assert (body["param"], body["code"], body["type"]) == (param, 400, "invalid_request_error")


def test_body_must_be_an_object() -> None:
    error = refused(["not", "an", "object"])
    assert error.status == 400 and "JSON object" in error.message


def test_unknown_model_is_404() -> None:
    error = refused({**GOOD, "model": "gpt-4"})
    assert error.status == 404 and error.param == "model"
    assert error.to_body()["error"]["type"] == "model_not_found"


def test_response_shapes_carry_the_pipeline_extension() -> None:
    state = PipelineState.start(parse_chat_request(GOOD, SETTINGS), request_id="abc")
    state.revision, state.tier = "a-1234", "small"
    body = chat_completion(state)
    assert body["object"] == "chat.completion" and body["id"] == "chatcmpl-abc"
    assert body["pipeline"]["revision"] == "a-1234" and body["pipeline"]["tier"] == "small"
    first = chat_chunk(state, {"content": "x"})
    last = chat_chunk(state, {}, finish_reason="stop", final=True)
    assert "pipeline" not in first and last["pipeline"]["request_id"] == "abc"
    assert last["choices"][0]["finish_reason"] == "stop"


def test_hop_time_is_the_gaps_between_stages() -> None:
    from shared_pipeline.schemas import StageStamp

    state = PipelineState.start(parse_chat_request(GOOD, SETTINGS))
    state.timings = [StageStamp(stage="retrieve", start=10.0, end=10.5),
                     StageStamp(stage="rerank", start=10.6, end=11.0),
                     StageStamp(stage="route", start=11.25, end=11.3)]
    assert state.hop_ms() == 350.0
    assert chat_completion(state)["pipeline"]["hop_ms"] == 350.0

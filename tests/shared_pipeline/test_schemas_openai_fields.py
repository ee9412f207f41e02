"""Every OpenAI field in the request table: accepted ones parse (and mean what they say),
refused ones are a 4xx naming the field (issue 11 item 1)."""

from __future__ import annotations

import pytest

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import SamplingParams
from shared_pipeline.schemas import (
    PipelineState,
    RequestError,
    chat_chunk,
    chat_completion,
    parse_chat_request,
)
from tests.request_table import ACCEPTED, REFUSED, body

SETTINGS = Settings()


@pytest.mark.parametrize("payload", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(payload) -> None:
    request = parse_chat_request(payload, SETTINGS)
    assert all(isinstance(m.content, str) and m.content for m in request.messages)


@pytest.mark.parametrize(("payload", "status", "param"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_names_the_field(payload, status, param) -> None:
    with pytest.raises(RequestError) as info:
        parse_chat_request(payload, SETTINGS)
    error = info.value.to_body()["error"]
    assert (info.value.status, error["param"], error["code"]) == (status, param, status)
    assert param.split(".")[0] in error["message"]


def test_text_parts_become_one_string_and_developer_is_system() -> None:
    request = parse_chat_request(ACCEPTED["content-text-parts"], SETTINGS)
    assert request.query == "What does the pass\nstatement do?"
    request = parse_chat_request(ACCEPTED["role-developer"], SETTINGS)
    assert [m.role for m in request.messages] == ["system", "user"]
    # the state survives the JSON hop between stages (KServe's router) unchanged
    state = PipelineState.start(request)
    assert PipelineState.model_validate_json(state.model_dump_json()) == state


def test_honoured_fields_reach_the_engine() -> None:
    request = parse_chat_request(body(stop="\n", presence_penalty=0.5, frequency_penalty=-1,
                                      max_completion_tokens=9, max_tokens=None, seed=3), SETTINGS)
    params = SamplingParams.for_request(request, default_max_tokens=64)
    assert params == SamplingParams(max_tokens=9, seed=3, stop=("\n",), presence_penalty=0.5,
                                    frequency_penalty=-1.0)
    assert SamplingParams.for_request(parse_chat_request(body(), SETTINGS), 64).stop == ()


def test_every_answer_carries_the_prompt_documents() -> None:
    from shared_pipeline.schemas import Document

    state = PipelineState.start(parse_chat_request(body(), SETTINGS), request_id="abc")
    state.reranked = [Document(id="pass#0", title="pass", text="t", score=0.71),
                      Document(id="compound#2", title="compound", text="t", score=0.52)]
    expected = [{"id": "pass#0", "title": "pass", "score": 0.71, "rank": 1},
                {"id": "compound#2", "title": "compound", "score": 0.52, "rank": 2}]
    assert chat_completion(state)["pipeline"]["documents"] == expected
    assert chat_chunk(state, {}, "stop", final=True)["pipeline"]["documents"] == expected

"""`/v1/completions` requests and answers, `/health` bodies and the OpenAI 404/405 shape
(issue 11 item 2), on the shared code every stack answers through."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from shared_pipeline.completions import completion_chunks, text_completion
from shared_pipeline.config import Settings
from shared_pipeline.endpoints import health_answer, install_route_errors
from shared_pipeline.entry import enter_completion
from shared_pipeline.schemas import (
    Answer,
    Completion,
    PipelineState,
    RequestError,
    chat_chunk,
    chat_completion,
)
from tests.request_table import COMPLETION_ACCEPTED, COMPLETION_REFUSED, PROMPT

SETTINGS = Settings()


@pytest.mark.parametrize("payload", COMPLETION_ACCEPTED.values(), ids=COMPLETION_ACCEPTED.keys())
def test_completion_accepted_asks_the_prompt(payload) -> None:
    state = enter_completion(payload, SETTINGS, "rev-1")
    assert state.request.query == PROMPT and state.revision == "rev-1"
    assert [m.role for m in state.request.messages] == ["user"]


@pytest.mark.parametrize(("payload", "status", "param"), COMPLETION_REFUSED.values(),
                         ids=COMPLETION_REFUSED.keys())
def test_completion_refused_names_the_field(payload, status, param) -> None:
    with pytest.raises(RequestError) as info:
        enter_completion(payload, SETTINGS, "rev-1")
    error = info.value.to_body()["error"]
    assert (info.value.status, error["param"]) == (status, param), error
    assert param.split(".")[0] in error["message"]


def test_sampling_fields_reach_the_request() -> None:
    state = enter_completion(COMPLETION_ACCEPTED["completion-sampling"], SETTINGS, "r")
    r = state.request
    assert (r.temperature, r.top_p, r.seed, r.stop, r.requested_tokens) == (0.5, 0.9, 7, ["\n"],
                                                                            4)


def finished_state(stream_options: dict | None = None) -> PipelineState:
    extra = {"stream": True, "stream_options": stream_options} if stream_options else {}
    state = enter_completion({"prompt": PROMPT, **extra}, SETTINGS, "rev-1")
    state.completion = Completion(text="It does nothing.", prompt_tokens=12,
                                  completion_tokens=5, finish_reason="stop")
    state.answer = Answer(text="It does nothing.", citations=[], cites_nothing=True)
    return state


def test_whole_answer_is_a_text_completion_with_the_pipeline_extension() -> None:
    chat = chat_completion(finished_state())
    out = text_completion(chat)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    assert out["choices"] == [{"index": 0, "text": "It does nothing.", "logprobs": None,
                               "finish_reason": "stop"}]
    assert out["usage"]["completion_tokens"] == 5 and out["pipeline"] == chat["pipeline"]


@pytest.mark.parametrize("usage_chunk", [False, True])
def test_stream_chunks_are_text_completion_chunks(usage_chunk: bool) -> None:
    state = finished_state({"include_usage": usage_chunk})
    chat = [chat_chunk(state, {"role": "assistant", "content": ""}),
            chat_chunk(state, {"content": "It does"}), chat_chunk(state, {"content": " nothing."}),
            chat_chunk(state, {}, finish_reason="stop", final=True)]
    out = [c for chunk in chat for c in completion_chunks(chunk, usage_chunk)]
    assert {c["object"] for c in out} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in out if c["choices"]) == "It does nothing."
    assert out[-1]["pipeline"]["revision"] == "rev-1" and "pipeline" not in out[0]
    if usage_chunk:  # OpenAI's framing: the usage chunk has no choices
        assert out[-1]["choices"] == [] and out[-1]["usage"]["completion_tokens"] == 5
        assert out[-2]["choices"][0]["finish_reason"] == "stop"
    else:
        assert out[-1]["choices"][0]["finish_reason"] == "stop" and len(out) == 3
    error = {"error": {"message": "x", "type": "server_error", "param": None, "code": 500}}
    assert completion_chunks(error, usage_chunk) == [error]


def test_health_is_200_when_ready_and_503_naming_the_stage() -> None:
    ready = {s: None for s in ("retrieve", "rerank", "route", "generate", "postprocess")}
    status, body = health_answer(ready)
    assert status == 200 and body["status"] == "ok" and set(body["stages"].values()) == {"ready"}
    status, body = health_answer({**ready, "generate": "generator-small is DEPLOYING"})
    assert status == 503 and body["stages"]["generate"] == "generator-small is DEPLOYING"
    assert "'generate'" in body["error"]["message"] and body["error"]["code"] == 503


def test_unknown_path_and_wrong_method_answer_in_the_openai_shape() -> None:
    async def ok(_) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/v1/chat/completions", ok, methods=["POST"])])
    install_route_errors(app)
    with TestClient(app) as client:
        missing = client.post("/v1/nothing", json={})
        wrong = client.get("/v1/chat/completions")
    assert missing.status_code == 404 and wrong.status_code == 405
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/nothing)"
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert "GET" in wrong.json()["error"]["message"] and "POST" in wrong.headers["allow"]

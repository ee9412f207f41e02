"""The shared error table itself, row by row: status, OpenAI type, headers, and no leaked text.

Plus the adapters' translations that run here without a cluster: Ray's `BackPressureError` and
a `RayTaskError` wrapping a replica's exception (both are plain exception objects; no Ray runs).
"""

from __future__ import annotations

import json
import logging

import pytest

from shared_pipeline.engines.base import EngineOverloaded
from shared_pipeline.entry import NOT_JSON, enter, read_json
from shared_pipeline.errors import INTERNAL_MESSAGE, Overloaded, error_answer
from shared_pipeline.schemas import RequestError
from shared_pipeline.streaming import sse_failure

SECRET = "/home/alice/.ssh/id_rsa: prompt of another user"

ROWS = [  # exception, status, type, param, headers, retry_after_s in the body
    (RequestError(400, "messages: too short", "messages"), 400, "invalid_request_error",
     "messages", {}, None),
    (RequestError(404, "no model gpt-9", "model", kind="model_not_found"), 404,
     "model_not_found", "model", {}, None),
    (EngineOverloaded(5, 4, retry_after_s=3), 503, "overloaded_error", None,
     {"Retry-After": "3"}, 3),
    (Overloaded("ingress queue full"), 503, "overloaded_error", None, {"Retry-After": "1"}, 1),
    (Overloaded("too many requests", retry_after_s=2.4, status=429), 429, "overloaded_error",
     None, {"Retry-After": "2"}, 2),
    (RuntimeError(SECRET), 500, "server_error", None, {}, None),
    (KeyError(SECRET), 500, "server_error", None, {}, None),
]


@pytest.mark.parametrize(("exc", "status", "kind", "param", "headers", "retry"), ROWS,
                         ids=[type(r[0]).__name__ + str(r[1]) for r in ROWS])
def test_every_row_of_the_table(exc, status, kind, param, headers, retry) -> None:
    error, got_headers = error_answer(exc, "rid-7")
    body = error.to_body()["error"]
    assert (error.status, body["type"], body["param"], body["code"]) == (status, kind, param,
                                                                          status)
    assert got_headers == headers
    assert body.get("retry_after_s") == retry
    assert body["message"]


def test_overload_messages_say_what_is_full() -> None:
    error, _ = error_answer(EngineOverloaded(5, 4))
    assert error.message == "server overloaded: generator queue is full (5 waiting, limit 4)"


@pytest.mark.parametrize("exc", [RuntimeError(SECRET), ValueError(SECRET), KeyError(SECRET)])
def test_a_500_carries_no_exception_text_and_the_log_has_it_with_the_request_id(
        exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="shared_pipeline.errors"):
        error, _ = error_answer(exc, "rid-42", where="postprocess")
    text = json.dumps(error.to_body())
    assert SECRET not in text and "alice" not in text and type(exc).__name__ not in text
    assert error.message == INTERNAL_MESSAGE
    record = caplog.records[-1]
    assert "rid-42" in record.getMessage() and "postprocess" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc


def test_a_failed_stream_ends_with_one_error_event_then_done() -> None:
    error, _ = error_answer(RuntimeError(SECRET), "rid-1", where="stream")
    events = sse_failure(error).split("\n\n")
    assert events[-1] == "" and len(events) == 3
    assert json.loads(events[0].removeprefix("data: ")) == error.to_body()
    assert events[1] == "data: [DONE]"


def test_the_entry_refuses_bad_bodies_and_stamps_the_revision(settings) -> None:
    with pytest.raises(RequestError) as not_json:
        read_json(b'{"messages": [')
    assert (not_json.value.status, not_json.value.message, not_json.value.param) == (
        400, NOT_JSON, None)
    with pytest.raises(RequestError) as no_object:
        enter([1, 2], settings, "a-1")
    assert no_object.value.status == 400
    state = enter({"messages": [{"role": "user", "content": "What is a list?"}]}, settings,
                  "a-1", "rid-9")
    assert (state.revision, state.request_id, state.query) == ("a-1", "rid-9", "What is a list?")


def test_ray_exceptions_are_translated_before_the_table() -> None:
    from ray.exceptions import RayTaskError
    from ray.serve.exceptions import BackPressureError

    from rayserve_impl.ingress import ray_error_answer

    error, headers = ray_error_answer(BackPressureError(9, 8, 429, 0.2), "rid-3")
    assert (error.status, error.kind, headers) == (429, "overloaded_error", {"Retry-After": "1"})
    assert "max_queued_requests=8" in error.message
    wrapped = RayTaskError("run", "Traceback ...", EngineOverloaded(3, 2), proctitle="replica",
                           pid=1, ip="127.0.0.1")
    error, headers = ray_error_answer(wrapped, "rid-4")
    assert (error.status, headers) == (503, {"Retry-After": "1"})
    crashed = RayTaskError("run", "Traceback ...", RuntimeError(SECRET), proctitle="replica",
                           pid=1, ip="127.0.0.1")
    error, _ = ray_error_answer(crashed, "rid-5")
    assert error.status == 500 and SECRET not in json.dumps(error.to_body())

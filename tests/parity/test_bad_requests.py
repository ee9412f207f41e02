"""The same bad requests, over HTTP, to the in-process server, the KServe graph and the Ray ingress.

One table (`tests/parity/table.py`): each row is a request and the answer every stack must give
(status, OpenAI error `type`, `param`). A row that legitimately differs on one stack says so in
`differs` with the reason; nowhere else may a stack differ. The stacks start one after the
other, each once for the package (tests/parity/conftest.py, `loadtests.stacks.launch`, the
harness's own launcher), so only one holds the machine.

Every stack runs a bad revision (`postprocess.fail_ratio` 0.5): the post-processor fails a
request when a hash of its id says so, the same id on every stack, so a request sent with
`FAILS` as its `x-request-id` fails in post-processing everywhere and one sent with `PASSES` never
does. That gives the server-side rows: a generic 500 without the exception's text, and a stream
that fails after its headers ending with one error event, then `data: [DONE]`.
"""

from __future__ import annotations

import json

import httpx
import pytest

from loadtests.stacks import StackHandle
from shared_pipeline.config import Settings
from shared_pipeline.errors import INTERNAL_MESSAGE
from tests.openai_surface import check_surface, check_whole_completion
from tests.parity.table import (
    FAILS,
    PASSES,
    STREAM_REFUSED_WHY,
    USER,
    answer_of,
    completion_rows,
    post,
    rows,
)

pytestmark = pytest.mark.slow


def test_every_bad_request_gets_the_same_answer_on_every_stack(stack: StackHandle,
                                                               settings: Settings) -> None:
    mismatches = []
    for row in rows(settings.max_input_chars):
        expected = row.differs.get(stack.name, row.expect)
        got, error = answer_of(stack.url, row.body, row.request_id)
        print(f"{stack.name:9} {row.label:28} {got}")
        if got != expected:
            mismatches.append((row.label, expected, got, error.get("message")))
        elif error:
            assert error["code"] == got[0] and error["message"], (row.label, error)
            if got[0] == 500:  # the table's generic text: no exception type or message
                assert error["message"] == INTERNAL_MESSAGE, (row.label, error)
    assert mismatches == [], mismatches


def test_every_completions_row_gets_the_same_answer_on_every_stack(stack: StackHandle) -> None:
    mismatches = []
    for row in completion_rows():
        expected = row.differs.get(stack.name, row.expect)
        got, error = answer_of(stack.url, row.body, row.request_id, "/v1/completions")
        print(f"{stack.name:9} {row.label:32} {got}")
        if got != expected:
            mismatches.append((row.label, expected, got, error.get("message")))
    assert mismatches == [], mismatches


def test_health_models_404_405_and_a_whole_completion_on_every_stack(stack: StackHandle) -> None:
    from openai import OpenAI

    check_surface(stack.url)
    client = OpenAI(base_url=stack.url + "/v1", api_key="unused", timeout=180, max_retries=0)
    check_whole_completion(client, request_id=PASSES)


def events_of(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.splitlines() if line]


@pytest.mark.parametrize("request_id", [PASSES, FAILS])
def test_a_stream_ends_the_same_way_on_every_stack_that_streams(stack: StackHandle,
                                                                request_id: str) -> None:
    """A good stream: chunks, then [DONE]. One failing after its headers: the chunks so far, one
    error event, then [DONE]. (KServe's graph refuses stream=true: the table's row says why.)"""
    if not stack.streams:
        pytest.skip(f"{stack.name}: {STREAM_REFUSED_WHY}")
    r = post(stack.url, {"messages": USER, "stream": True, "max_tokens": 8}, request_id)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = events_of(r)
    print(f"{stack.name} {request_id}: {len(events)} events, last two {events[-2:]}")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    errors = [c for c in chunks if "error" in c]
    if request_id == PASSES:
        assert errors == [] and chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
        return
    assert len(errors) == 1 and chunks[-1] is errors[0]
    assert errors[0]["error"]["type"] == "server_error"
    assert errors[0]["error"]["message"] == INTERNAL_MESSAGE
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_the_stack_still_answers_after_the_bad_requests(stack: StackHandle) -> None:
    r = post(stack.url, {"messages": [{"role": "user", "content": "What is a tuple?"}],
                         "max_tokens": 8}, PASSES)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]

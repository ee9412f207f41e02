"""The same bad requests, over HTTP, to the in-process server, the KServe graph and the Ray ingress.

One table: each row is a request and the answer every stack must give (status, OpenAI error
`type`, `param`). A row that legitimately differs on one stack says so in `differs` with the
reason; nowhere else may a stack differ. The stacks start one after the other, each once for the
module (`loadtests.stacks.launch`, the harness's own launcher), so only one holds the machine.

Every stack runs a bad revision (`postprocess.fail_ratio` 0.5): the post-processor fails a
request when a hash of its id says so, the same id on every stack, so a request sent with
`FAILS` as its `x-request-id` fails in post-processing everywhere and one sent with `PASSES` never
does. That gives the server-side rows: a generic 500 without the exception's text, and a stream
that fails after its headers ending with one error event, then `data: [DONE]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import httpx
import pytest

from loadtests.stacks import StackHandle, launch
from shared_pipeline.config import Settings
from shared_pipeline.errors import INTERNAL_MESSAGE
from shared_pipeline.stages.postprocess import fails_on_purpose
from tests.openai_surface import check_surface, check_whole_completion
from tests.parity.stacks import PARITY_STACKS
from tests.request_table import COMPLETION_ACCEPTED, COMPLETION_REFUSED, completion_body

pytestmark = pytest.mark.slow

USER = [{"role": "user", "content": "What is a list?"}]
Answer = tuple[int, str | None, str | None]  # status, error type, error param
BAD = "invalid_request_error"
FAIL_RATIO = 0.5
FAILS = next(f"parity-fails-{i}" for i in count() if fails_on_purpose(f"parity-fails-{i}",
                                                                       FAIL_RATIO))
PASSES = next(f"parity-passes-{i}" for i in count()
              if not fails_on_purpose(f"parity-passes-{i}", FAIL_RATIO))
STREAM_REFUSED_WHY = ("the InferenceGraph router buffers each step's whole answer, so KServe "
                      "refuses stream=true through the graph instead of pretending to stream")


@dataclass(frozen=True)
class Row:
    label: str
    body: dict | list | bytes
    expect: Answer
    differs: dict[str, Answer] = field(default_factory=dict)  # stack -> its answer
    why: str = ""  # the reason a stack differs
    request_id: str = PASSES


def rows(max_input_chars: int) -> list[Row]:
    stream_ok: Answer = (200, None, None)
    return [
        Row("not JSON", b'{"model": "pipeline", "messages": [', (400, BAD, None)),
        Row("JSON but not an object", [1, 2], (400, BAD, None)),
        Row("no messages", {"model": "pipeline"}, (400, BAD, "messages")),
        Row("messages not a list", {"messages": "What is a list?"}, (400, BAD, "messages")),
        Row("empty messages", {"messages": []}, (400, BAD, "messages")),
        Row("bad role", {"messages": [{"role": "robot", "content": "hi"}]},
            (400, BAD, "messages.0.role")),
        Row("empty content", {"messages": [{"role": "user", "content": ""}]},
            (400, BAD, "messages.0.content")),
        Row("no user turn", {"messages": [{"role": "system", "content": "be brief"}]},
            (400, BAD, "messages")),
        Row("max_tokens wrong type", {"messages": USER, "max_tokens": "ten"},
            (400, BAD, "max_tokens")),
        Row("max_tokens over the model", {"messages": USER, "max_tokens": 10**6},
            (400, BAD, "max_tokens")),
        Row("temperature out of range", {"messages": USER, "temperature": 7},
            (400, BAD, "temperature")),
        Row("stream wrong type", {"messages": USER, "stream": "yes"}, (400, BAD, "stream")),
        Row("n above one", {"messages": USER, "n": 2}, (400, BAD, "n")),
        # `tools: []` is accepted (neutral: issue 11 item 1); a field OpenAI chat lacks is not
        Row("unknown field", {"messages": USER, "best_of": 2}, (400, BAD, "best_of")),
        Row("input too long", {"messages": [{"role": "user",
                                             "content": "x" * (max_input_chars + 1)}]},
            (400, BAD, "messages")),
        Row("top_k zero", {"messages": USER, "pipeline": {"top_k": 0}},
            (400, BAD, "pipeline.top_k")),
        Row("unknown tier", {"messages": USER, "pipeline": {"tier": "huge"}},
            (400, BAD, "pipeline.tier")),
        Row("unknown pipeline option", {"messages": USER, "pipeline": {"depth": 3}},
            (400, BAD, "pipeline.depth")),
        Row("unknown model", {"model": "gpt-9", "messages": USER},
            (404, "model_not_found", "model")),
        Row("a valid stream", {"messages": USER, "stream": True, "max_tokens": 4}, stream_ok,
            differs={"kserve": (400, BAD, "stream")}, why=STREAM_REFUSED_WHY),
        Row("post-processing fails", {"messages": USER, "max_tokens": 4},
            (500, "server_error", None), request_id=FAILS),
    ]


@pytest.fixture(scope="module", params=PARITY_STACKS)
def stack(request: pytest.FixtureRequest, settings: Settings,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    log_dir: Path = tmp_path_factory.mktemp(f"parity-{request.param}")
    bad_revision = settings.model_copy(update={"postprocess": settings.postprocess.model_copy(
        update={"fail_ratio": FAIL_RATIO})})
    with launch(request.param, bad_revision, log_dir) as handle:
        print(f"\n{request.param} ready in {handle.startup_s:.1f}s at {handle.url}")
        yield handle


def completion_rows() -> list[Row]:
    """The request table's `/v1/completions` rows, plus a completions stream (which KServe's
    graph refuses as it refuses a chat stream)."""
    refused = [Row(label, payload, (status, "model_not_found" if status == 404 else BAD, param))
               for label, (payload, status, param) in COMPLETION_REFUSED.items()]
    accepted = [Row(label, payload, (200, None, None))
                for label, payload in COMPLETION_ACCEPTED.items()]
    stream = Row("completion-stream", completion_body(stream=True), (200, None, None),
                 differs={"kserve": (400, BAD, "stream")}, why=STREAM_REFUSED_WHY)
    return [*refused, *accepted, stream]


def post(stack: StackHandle, body: dict | list | bytes, request_id: str,
         path: str = "/v1/chat/completions") -> httpx.Response:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(f"{stack.url}{path}", timeout=180, **kwargs,
                      headers={"content-type": "application/json", "x-request-id": request_id})


def answer_of(stack: StackHandle, body: dict | list | bytes,
              request_id: str, path: str = "/v1/chat/completions") -> tuple[Answer, dict]:
    r = post(stack, body, request_id, path)
    if r.status_code == 200:
        return (200, None, None), {}
    error = r.json()["error"]
    return (r.status_code, error["type"], error["param"]), error


def test_every_bad_request_gets_the_same_answer_on_every_stack(stack: StackHandle,
                                                               settings: Settings) -> None:
    mismatches = []
    for row in rows(settings.max_input_chars):
        expected = row.differs.get(stack.name, row.expect)
        got, error = answer_of(stack, row.body, row.request_id)
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
        got, error = answer_of(stack, row.body, row.request_id, "/v1/completions")
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
    r = post(stack, {"messages": USER, "stream": True, "max_tokens": 8}, request_id)
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
    r = post(stack, {"messages": [{"role": "user", "content": "What is a tuple?"}],
                     "max_tokens": 8}, PASSES)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]

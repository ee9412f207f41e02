"""The parity table: bad (and a few good) requests, each with the answer every entry must give.

Each row is a request and (status, OpenAI error `type`, `param`). A row that legitimately
differs on one stack says so in `differs` with the reason; nowhere else may a stack differ. Sent
by tests/parity/test_bad_requests.py to the entries of `PARITY_STACKS`, and by
tests/kserve_impl/test_orchestrated_e2e.py to the orchestrated KServe entry on its own module
stack (every row but the one that needs the bad revision).

`FAILS` and `PASSES` are request ids for a bad revision (`postprocess.fail_ratio` `FAIL_RATIO`):
the post-processor fails a request when a hash of its id says so, the same id on every stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import httpx

from shared_pipeline.stages.postprocess import fails_on_purpose
from tests.request_table import COMPLETION_ACCEPTED, COMPLETION_REFUSED, completion_body

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


def post(url: str, body: dict | list | bytes, request_id: str,
         path: str = "/v1/chat/completions") -> httpx.Response:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(f"{url}{path}", timeout=180, **kwargs,
                      headers={"content-type": "application/json", "x-request-id": request_id})


def answer_of(url: str, body: dict | list | bytes,
              request_id: str, path: str = "/v1/chat/completions") -> tuple[Answer, dict]:
    r = post(url, body, request_id, path)
    if r.status_code == 200:
        return (200, None, None), {}
    error = r.json()["error"]
    return (r.status_code, error["type"], error["param"]), error

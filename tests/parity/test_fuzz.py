"""Hostile input on every stack: a schemathesis fuzz of the HTTP API and a fixed table.

Each stack starts once for the package (tests/parity/conftest.py), running a bad revision that
never fails a request sent with `PASSES` as its `x-request-id`: every valid request here does. The
fuzz reads the API's OpenAPI description: the FastAPI entries publish one at /openapi.json
(`shared_pipeline.openapi_doc.describe_chat`), the graph runner gets the same document from
`api_document`. It generates valid and invalid cases per operation (bounded: `EXAMPLES` each),
and every answer must be below 500, and a JSON OpenAI error when it is a 4xx. Valid cases ask
for at most `MAX_TOKENS` tokens, so the fuzz costs seconds of generation, not minutes.

The fixed table sends what a fuzzer rarely finds: invalid UTF-8, deep nesting, NaN/Infinity,
huge integers, duplicate keys, null for required fields, a wrong content type, GET on a POST
route, a slow body and 10 MB / 100 MB bodies (sent on a raw socket, since the server answers
413 and closes before the client has finished sending). The 100 MB bodies must be answered
quickly and the resident memory of the process listening on the port (Ray: Serve's proxy) must
not grow by more than the body limit.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from loadtests.soak_sampler import stack_processes
from loadtests.stacks import StackHandle
from shared_pipeline.config import Settings
from tests.parity.stacks import BODY_TIMEOUT_S
from tests.parity.table import PASSES

pytestmark = pytest.mark.slow

EXAMPLES = 30
MAX_TOKENS = 4
PASSING = {"x-request-id": PASSES}  # never failed by the bad revision the stack runs
CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "What is a list?"}]


def assert_refusal(label: str, response: httpx.Response) -> dict:
    """A 4xx with an OpenAI error body; returns the error object."""
    assert 400 <= response.status_code < 500, (label, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["message"], (label, error)
    return error


def assert_ready(stack: StackHandle) -> None:
    r = httpx.post(f"{stack.url}{CHAT}", json={"messages": USER, "max_tokens": MAX_TOKENS},
                   headers=PASSING, timeout=180)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ the fuzz
def openapi_of(stack: StackHandle):
    import schemathesis

    if stack.name == "kserve":
        from shared_pipeline.openapi_doc import api_document

        return schemathesis.openapi.from_dict(api_document("twinserve InferenceGraph router"))
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.json")


def bounded(case) -> None:
    """Cap generation in a valid body (the fuzz is about input, not long answers)."""
    if isinstance(case.body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(case.body.get(key), int) and case.body[key] > MAX_TOKENS:
                case.body[key] = MAX_TOKENS
        if "max_tokens" not in case.body and "max_completion_tokens" not in case.body:
            case.body["max_tokens"] = MAX_TOKENS


def fuzz_operation(stack: StackHandle, operation, mode, seen: dict[tuple[str, int], int]) -> None:
    """`EXAMPLES` cases of one operation in one mode (valid or invalid input)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        bounded(case)
        response = case.call(base_url=stack.url, headers=PASSING, timeout=180)
        key = (f"{operation.label} {mode.value}", response.status_code)
        seen[key] = seen.get(key, 0) + 1
        assert response.status_code < 500, (case.body, response.text[:300])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["message"], (case.body, error)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (a GET without parameters)
        print(f"{stack.name:9} {operation.label} {mode.value}: no invalid input exists")


def test_fuzz_finds_no_5xx_and_only_json_refusals(stack: StackHandle) -> None:
    from schemathesis import GenerationMode

    seen: dict[tuple[str, int], int] = {}
    for result in openapi_of(stack).get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(stack, result.ok(), mode, seen)
    for (label, status), n in sorted(seen.items()):
        print(f"{stack.name:9} {label:40} {status}: {n}")
    assert_ready(stack)


# ------------------------------------------------------------------ the fixed table
TABLE: list[tuple[str, bytes, str, str]] = [  # label, body, content type, what the error names
    ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
     "application/json", "JSON"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", "deeper"),
    ("NaN", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
     "application/json", "NaN"),
    ("Infinity", b'{"messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}',
     "application/json", "Infinity"),
    ("huge integer", b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1'
     + b"0" * 400 + b"}", "application/json", "max_tokens"),
    ("huger integer", b'{"messages": [{"role": "user", "content": "hi"}], "seed": 1'
     + b"0" * 5000 + b"}", "application/json", "JSON"),
    ("duplicate keys", b'{"model": "pipeline", "model": "gpt-9", "messages": []}',
     "application/json", "model"),
    ("null for required", b'{"model": "pipeline", "messages": null}', "application/json",
     "messages"),
    ("wrong content type", b"model=pipeline&messages=hi", "application/x-www-form-urlencoded",
     "JSON"),
]

# Where a stack names a different problem, and why. KServe's data plane decodes with orjson,
# which refuses integers beyond 64 bits as invalid JSON before any field is validated.
DIFFERS = {("kserve", "huge integer"): "JSON"}


def test_the_fixed_table_is_refused_by_name(stack: StackHandle) -> None:
    failures = []
    for label, body, content_type, names in TABLE:
        r = httpx.post(f"{stack.url}{CHAT}", content=body, timeout=60,
                       headers={"content-type": content_type})
        error = assert_refusal(label, r)
        print(f"{stack.name:9} {label:20} {r.status_code} {error['message'][:90]!r}")
        names = DIFFERS.get((stack.name, label), names)
        if names not in f"{error['message']} {error.get('param')}":
            failures.append((label, names, error))
    r = httpx.get(f"{stack.url}{CHAT}", timeout=60)
    print(f"{stack.name:9} {'GET on a POST route':20} {r.status_code} {r.text[:90]!r}")
    assert 400 <= r.status_code < 500 and isinstance(r.json(), dict), r.text
    assert failures == []
    assert_ready(stack)


# ------------------------------------------------------------------ big and slow bodies
def listener(stack: StackHandle) -> psutil.Process:
    """The stack's process that accepts connections on the URL's port."""
    port = urlsplit(stack.url).port
    for proc in stack_processes():
        try:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in proc.connections(kind="tcp")):
                return proc
        except psutil.Error:
            continue
    raise AssertionError(f"no process of the stack listens on {port}")


def raw_post(stack: StackHandle, size: int, chunked: bool = False, pause_s: float = 0.0,
             ) -> tuple[int, dict, float]:
    """Send a `size`-byte body on a raw socket until the server answers; (status, body, s)."""
    url = urlsplit(stack.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=60)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                 f"Content-Type: application/json\r\n{framing}\r\n\r\n".encode())
    stop = threading.Event()

    def send_body() -> None:
        piece = b"x" * (16 if pause_s else 65536)  # a slow client trickles
        sent = 0
        try:
            while sent < size and not stop.is_set():
                data = piece[:size - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
                if pause_s:
                    time.sleep(pause_s)
        except OSError:
            pass  # the server answered and closed: the rest is not wanted

    started = time.perf_counter()
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < length(answer):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    elapsed = time.perf_counter() - started
    stop.set()
    sock.close()
    sender.join(10)
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body), elapsed


def length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30  # unknown: read until the server closes


class PeakRss:
    """The highest RSS of `proc` while the block runs (sampled every 20 ms)."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.before = proc.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


@pytest.mark.parametrize(("label", "size", "chunked"), [
    ("10 MB", 10 * 2**20, False), ("100 MB", 100 * 2**20, False),
    ("100 MB chunked", 100 * 2**20, True)])
def test_big_bodies_get_413_quickly_without_the_memory(stack: StackHandle, settings: Settings,
                                                      label: str, size: int,
                                                      chunked: bool) -> None:
    limit = settings.server.max_body_bytes
    proc = listener(stack)
    raw_post(stack, 2 * limit, chunked)  # warm the path once, so first-use allocations pass
    with PeakRss(proc) as rss:
        status, body, elapsed = raw_post(stack, size, chunked)
    print(f"{stack.name:9} {label:15} {status} in {elapsed * 1000:.0f} ms; "
          f"{proc.name()} RSS +{rss.growth / 2**20:.2f} MiB (limit {limit / 2**20:.0f} MiB)")
    assert status == 413 and body["error"]["code"] == 413
    assert rss.growth <= limit
    assert_ready(stack)


def test_a_slow_body_is_timed_out(stack: StackHandle) -> None:
    status, body, elapsed = raw_post(stack, 4096, pause_s=BODY_TIMEOUT_S)
    print(f"{stack.name:9} slow body: {status} after {elapsed:.1f} s")
    assert status == 408 and "body" in body["error"]["message"]
    assert_ready(stack)

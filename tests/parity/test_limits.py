"""The request limits middleware (shared_pipeline.limits), driven through its ASGI interface.

Fast: a tiny ASGI app behind `RequestLimits`, fed the messages a server would send, so each case
shows what was read from the client before the answer. The three stacks are fuzzed with it
installed in tests/parity/test_fuzz.py (slow).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from shared_pipeline.limits import RequestLimits, json_depth

LIMIT = 1000


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 with the body it received (proves the body is replayed unchanged)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None,
         delay_s: float = 0.0, **limits: Any) -> tuple[int, bytes, int]:
    """(status, body, chunks the middleware asked for) for a request sent as `chunks`."""
    app = RequestLimits(echo, max_body_bytes=LIMIT, **limits)
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked > len(chunks):
            await asyncio.sleep(3600)  # a real server: nothing more until the client leaves
        await asyncio.sleep(delay_s)
        return {"type": "http.request", "body": chunks[asked - 1],
                "more_body": asked < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": headers or []}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), asked


def error_of(body: bytes) -> dict[str, Any]:
    error = json.loads(body)["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def test_a_body_within_the_limits_reaches_the_app_unchanged() -> None:
    body = json.dumps({"model": "pipeline", "messages": [{"role": "user", "content": "[{x"}]})
    status, answer, _ = call([body[:10].encode(), body[10:].encode()])
    assert (status, answer) == (200, body.encode())


def test_content_length_over_the_limit_is_413_before_reading() -> None:
    status, answer, asked = call([b"x" * 10] * 200, [(b"content-length", b"2000")])
    assert (status, asked) == (413, 0)
    error = error_of(answer)
    assert error["code"] == 413 and str(LIMIT) in error["message"]


def test_a_chunked_body_is_cut_off_when_it_passes_the_limit() -> None:
    status, answer, asked = call([b"x" * 300] * 100)
    assert status == 413 and asked == 4  # 1200 bytes > 1000: the other 96 chunks are never read
    assert error_of(answer)["param"] == "body"


def test_a_slow_body_is_408() -> None:
    status, answer, _ = call([b"{}"] * 10, delay_s=0.2, body_timeout_s=0.5)
    assert status == 408
    assert "0.5 s" in error_of(answer)["message"]


def test_deep_nesting_is_400_naming_the_depth() -> None:
    status, answer, _ = call([b"[" * 500 + b"]" * 500], max_json_depth=32)
    assert status == 400
    assert "32" in error_of(answer)["message"]


def test_a_deep_body_within_the_size_limit_never_reaches_json_loads() -> None:
    app_limit = 1 << 20
    depth = json_depth(b"[" * app_limit, 32)
    print(f"depth of {app_limit} brackets: {depth}")
    assert depth == app_limit


@pytest.mark.parametrize(("body", "depth"), [
    (b'{"a": [1, {"b": []}]}', 4),
    (b'{"a": "[[[[[[[[[[[[", "b": "{{{{{{{{{{{{"}', 1),
    (b'{"a": "\\"[[[[[[[[[[[[\\"", "b": [[["x"]]]}', 4),
    (b'[[[[[[[[[[[[]]]]]]]]]]]]', 12),
    (b'"unterminated [[[[[[[[[[[[', 12),
])
def test_json_depth_counts_brackets_outside_strings(body: bytes, depth: int) -> None:
    assert json_depth(body, limit=2) == depth


def test_disconnect_while_reading_answers_nothing() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(RequestLimits(echo)(scope, receive, send))
    assert sent == []


def test_every_entry_installs_the_limits() -> None:
    from kserve_impl.graph.app import build_app
    from kserve_impl.graph.router import GraphRunner
    from kserve_impl.graph.spec import load_graph
    from kserve_impl.manifests import MANIFEST_DIR
    from rayserve_impl.ingress import api
    from shared_pipeline.config import Settings
    from twinserve.inprocess_server import create_app

    settings = Settings()
    graph = load_graph(MANIFEST_DIR / "inferencegraph.yaml")
    url = "http://127.0.0.1:9/v1/models/x:predict"  # never called: only the app is built
    apps = [create_app(settings, pipeline=object()),  # type: ignore[arg-type]
            build_app(GraphRunner(graph, dict.fromkeys(graph.service_names(), url))), api]
    for app in apps:
        assert any(m.cls is RequestLimits for m in app.user_middleware), app


@pytest.mark.parametrize(("body", "named"), [
    (b'{"model": "pipeline", "model": "other", "messages": []}', "model"),
    (b'{"messages": [{"role": "user", "content": "hi", "role": "x"}]}', "role"),
    (b'{"temperature": NaN}', None),
    (b'{"temperature": -Infinity}', None),
])
def test_duplicate_keys_and_non_json_constants_are_400(body: bytes, named: str | None) -> None:
    status, answer, _ = call([body])
    error = error_of(answer)
    assert (status, error["param"]) == (400, named)
    print(error["message"])


def test_a_body_that_is_not_json_is_left_to_the_route() -> None:
    assert call([b'{"model": "pipeline", "messages": ['])[0] == 200
    assert call([b"\xff\xfe{}"])[0] == 200


def test_the_fastapi_entries_describe_the_chat_body() -> None:
    from rayserve_impl.ingress import api
    from shared_pipeline.config import Settings
    from shared_pipeline.openapi_doc import api_document
    from twinserve.inprocess_server import create_app

    for app in (create_app(Settings(), pipeline=object()), api):  # type: ignore[arg-type]
        doc = app.openapi()
        body = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"]["$ref"].endswith(
            "ChatCompletionRequest")
        assert "messages" in doc["components"]["schemas"]["ChatCompletionRequest"]["required"]
    graph = api_document("graph")
    assert {"/v1/models", "/v1/chat/completions"} <= set(graph["paths"])


def test_serves_proxy_takes_the_limits_callback() -> None:
    """`ray start` names the callback; Serve's own validator accepts what it returns."""
    from ray.serve._private.http_util import validate_http_proxy_callback_return

    from rayserve_impl.proxy_limits import middlewares

    (limits,) = validate_http_proxy_callback_return(middlewares())
    assert limits.cls is RequestLimits

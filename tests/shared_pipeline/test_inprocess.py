"""The in-process runner and the CLI on the real models (transformers engine)."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.schemas import STAGES, parse_chat_request
from twinserve.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(settings):
    loop = asyncio.new_event_loop()
    p = InProcessPipeline(settings)
    loop.run_until_complete(p.start())
    p.loop = loop
    yield p
    loop.run_until_complete(p.stop())
    loop.close()


def request(settings, question: str, **extra):
    return parse_chat_request({"messages": [{"role": "user", "content": question}],
                               "max_tokens": 32, **extra}, settings)


def test_answer_has_citations_tier_revision_and_timings(pipeline, settings) -> None:
    body = pipeline.loop.run_until_complete(
        pipeline.answer(request(settings, "How does the with statement work?")))
    ext = body["pipeline"]
    assert body["choices"][0]["message"]["content"].strip()
    assert ext["revision"] == pipeline.revision and ext["revision"].startswith("a-")
    assert ext["tier"] in {"small", "large"} and ext["tier_reason"]
    assert set(ext["timings"]) == set(STAGES)
    assert body["usage"]["completion_tokens"] <= 32
    assert all(c["id"].split("#")[0] == c["title"] for c in ext["citations"])
    documents = ext["documents"]  # what the generator was given, in prompt order
    assert [d["rank"] for d in documents] == [1, 2, 3]
    assert {c["id"] for c in ext["citations"]} <= {d["id"] for d in documents}


def test_text_parts_developer_role_and_stop_on_the_real_pipeline(pipeline, settings) -> None:
    """An SDK-shaped request: list content, a developer turn, a stop string."""
    plain = pipeline.loop.run_until_complete(pipeline.answer(request(
        settings, "What does the pass statement do?")))
    text = plain["choices"][0]["message"]["content"]
    stop = " " + text.split(" ")[3]
    body = pipeline.loop.run_until_complete(pipeline.answer(parse_chat_request({
        "messages": [{"role": "developer", "content": "Answer briefly."},
                     {"role": "user", "content": [{"type": "text",
                                                   "text": "What does the pass statement do?"}]}],
        "max_tokens": 32, "stop": [stop], "presence_penalty": 0, "logprobs": False}, settings)))
    print(f"\nplain {text!r}\nstop {stop!r}: {body['choices'][0]['message']['content']!r}")
    content = body["choices"][0]["message"]["content"]
    assert content and text.startswith(content) and len(content) < text.find(stop) + 1
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["pipeline"]["documents"]


def test_stream_yields_chunks_then_the_extension(pipeline, settings) -> None:
    async def collect():
        return [c async for c in pipeline.stream(
            request(settings, "What does the global statement do?", stream=True,
                    pipeline={"tier": "large"}))]

    chunks = pipeline.loop.run_until_complete(collect())
    content = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(content) >= 5  # one chunk per decoded piece, not one blob
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] in {"stop", "length"}
    assert final["pipeline"]["tier"] == "large" and "forced" in final["pipeline"]["tier_reason"]
    assert "pipeline" not in chunks[1]
    assert [d["rank"] for d in final["pipeline"]["documents"]] == [1, 2, 3]


def test_cli_ask_json(settings) -> None:
    result = CliRunner().invoke(app, ["ask", "How does the with statement work?", "--json",
                                      "--max-tokens", "24"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["object"] == "chat.completion"
    assert body["pipeline"]["citations"] and body["pipeline"]["timings"]["generate"] > 0


def test_cli_ask_rejects_bad_input(settings) -> None:
    result = CliRunner().invoke(app, ["ask", "hi", "--max-tokens", "0"])
    assert result.exit_code == 2
    assert "max_tokens" in result.stdout

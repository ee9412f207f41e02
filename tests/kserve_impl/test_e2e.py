"""The whole KServe stack on the real models: six model servers from the manifests and the graph.

One stack per module (`running_stack`), asked through the graph runner with the openai client as a
user would; then each server's `/metrics`, retrieval parity with the in-process pipeline, and bad
inputs, after which every server must still be ready.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from openai import BadRequestError, OpenAI

from kserve_impl.local import StackURL, running_stack
from kserve_impl.manifests import load_services
from shared_pipeline.config import Settings
from shared_pipeline.revision import revision_of
from tests.kserve_impl.helpers import metric
from tests.openai_e2e import ask_all, check_answer

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("How does the with statement work?", None),
    ("What does the await expression do in a coroutine?", None),
    ("Explain why a break statement terminates only the innermost loop", "large"),
]
MAX_TOKENS = 32
STAGE_OF = {s.name: s.command[s.command.index("--stage") + 1] for s in load_services()}


@pytest.fixture(scope="module")
def stack(settings: Settings) -> Iterator[StackURL]:
    started = time.perf_counter()
    with running_stack(settings) as url:
        print(f"\nKServe stack ready in {time.perf_counter() - started:.1f}s at {url}")
        yield url


@pytest.fixture(scope="module")
def client(stack: StackURL) -> OpenAI:
    return OpenAI(base_url=stack + "/v1", api_key="unused", timeout=120, max_retries=0)


@pytest.fixture(scope="module")
def answers(client: OpenAI) -> list[dict]:
    """The three questions, asked once through the graph (the other tests read the results)."""
    return ask_all(client, QUESTIONS, MAX_TOKENS, "e2e")


def test_answers_carry_citations_tier_and_revision(answers: list[dict],
                                                   settings: Settings) -> None:
    for i, answer in enumerate(answers):
        check_answer(answer, revision_of(settings), f"e2e-{i}", MAX_TOKENS)
    assert answers[2]["pipeline"]["tier"] == "large"  # forced
    assert sum(bool(a["pipeline"]["citations"]) for a in answers) >= 2


def test_every_server_shows_its_stage_in_its_metrics(stack: StackURL, answers: list) -> None:
    tiers = {a["pipeline"]["tier"] for a in answers}
    for name, base in stack.servers.items():
        text = httpx.get(base + "/metrics").text
        stage = STAGE_OF[name]
        tier = name.removeprefix("generator-") if stage == "generate" else None
        if tier is not None and tier not in tiers:
            continue  # the route rule sent nothing to this tier
        assert metric(text, "pipeline_stage_seconds_count", stack="kserve", stage=stage) >= 1, name
        assert metric(text, "pipeline_revision_info", stack="kserve", stage=stage) == 1, name
        assert metric(text, "request_predict_seconds_count", model_name=name) >= 1, name
        if stage != "retrieve":  # a hop is the wait since the previous stage's exit
            assert metric(text, "pipeline_hop_seconds_count", stack="kserve", stage=stage) >= 1
        if tier is not None:
            assert metric(text, "pipeline_generated_tokens_total", stack="kserve",
                          tier=tier) > 0
            assert metric(text, "pipeline_time_to_first_token_seconds_count", stack="kserve",
                          tier=tier) >= 1
        if stage == "postprocess":
            assert metric(text, "pipeline_requests_total", stack="kserve",
                          status="ok") == len(answers)
            assert metric(text, "pipeline_request_seconds_count", stack="kserve") >= 1
    assert tiers == {"small", "large"} or "large" in tiers


def test_same_question_retrieves_the_same_documents_as_in_process(
        stack: StackURL, answers: list[dict], settings: Settings) -> None:
    from shared_pipeline.stages.rerank import Reranker
    from shared_pipeline.stages.retrieve import Retriever

    retriever = Retriever(settings)
    reranker = Reranker(settings, index=retriever.index)
    for (question, _), answer in zip(QUESTIONS, answers, strict=True):
        local = retriever.search(question, settings.retrieve.top_k)
        body = {"model": "pipeline", "messages": [{"role": "user", "content": question}]}
        served = httpx.post(stack.servers["retriever"] + "/v1/models/retriever:predict",
                            json=body, timeout=60).json()
        assert [d["id"] for d in served["retrieved"]] == [d.id for d in local]
        top = {d.id for d in reranker.rerank(question, local, settings.rerank.top_n)}
        assert {c["id"] for c in answer["pipeline"]["citations"]} <= top


def bad_inputs(settings: Settings) -> list[tuple[str, dict | bytes, int, str]]:
    user = [{"role": "user", "content": "What is a list?"}]
    too_long = [{"role": "user", "content": "x" * (settings.max_input_chars + 1)}]
    return [
        ("invalid JSON", b'{"model": "pipeline", "messages": [', 400, "not valid JSON"),
        ("missing messages", {"model": "pipeline"}, 400, "messages"),
        ("messages wrong type", {"messages": "What is a list?"}, 400, "messages"),
        ("max_tokens wrong type", {"messages": user, "max_tokens": "ten"}, 400, "max_tokens"),
        ("input over the limit", {"messages": too_long}, 400, "limit"),
        ("unknown tier", {"messages": user, "pipeline": {"tier": "huge"}}, 400, "pipeline.tier"),
        ("stream through the graph", {"messages": user, "stream": True}, 400, "buffers"),
        ("unknown model", {"model": "gpt-9", "messages": user}, 404, "gpt-9"),
    ]


def test_bad_inputs_get_4xx_json_naming_the_problem_and_servers_stay_ready(
        stack: StackURL, client: OpenAI, settings: Settings) -> None:
    for label, body, status, words in bad_inputs(settings):
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = httpx.post(stack + "/v1/chat/completions", timeout=60,
                       headers={"content-type": "application/json"}, **kwargs)
        assert r.status_code == status, (label, r.text)
        error = r.json()["error"]
        assert words in error["message"] or words == error["param"], (label, error)
    with pytest.raises(BadRequestError, match=r"pipeline\.tier"):  # the client reads the error
        client.chat.completions.create(model="pipeline", messages=[{"role": "user",
                                                                    "content": "hi"}],
                                       extra_body={"pipeline": {"tier": "huge"}})
    for name, base in stack.servers.items():
        assert httpx.get(f"{base}/v1/models/{name}").json() == {"name": name, "ready": True}
    retriever_metrics = httpx.get(stack.servers["retriever"] + "/metrics").text
    assert metric(retriever_metrics, "pipeline_requests_total", stack="kserve",
                  status="client_error") >= len(bad_inputs(settings))
    still = client.chat.completions.create(
        model="pipeline", messages=[{"role": "user", "content": "What is a tuple?"}],
        max_tokens=8)
    assert still.choices[0].message.content

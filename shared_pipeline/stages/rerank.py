"""Rerank: score the retrieved passages against the query and keep the best few.

Default: cosine similarity between the query's MiniLM embedding and the passages' stored
embeddings (only the query is embedded per request). With `rerank.cross_encoder` set: a
sentence-transformers CrossEncoder, its logits squashed to 0..1 so the route rule reads one scale.

The dense cosine is the same MiniLM model the dense retriever ranked with, so sorting by it alone
undoes the fusion: BM25's evidence is dropped and the dense order comes back, and neighbouring
chunks of one topic crowd out the others (`python -m loadtests.bench_retrieval` measures it).
So the dense reranker orders by reciprocal-rank fusion of its own ranking with the retrieval's
fused ranking; a cross-encoder, a different and stronger model, orders by its score alone. The
prompt then takes at most `max_per_document` passages of one source document while others are
left, so three slots are not spent on three neighbouring chunks of one topic.
"""

from __future__ import annotations

import math

import numpy as np

from shared_pipeline.config import Settings
from shared_pipeline.index import PassageIndex
from shared_pipeline.schemas import Document, PipelineState


def diverse(ordered: list[Document], top_n: int, per_document: int | None) -> list[Document]:
    """The first `top_n` of `ordered`, at most `per_document` per title while other titles are
    left; slots still free after that take the best passages skipped, in order."""
    if per_document is None:
        return ordered[:top_n]
    taken: list[Document] = []
    skipped: list[Document] = []
    count: dict[str, int] = {}
    for d in ordered:
        if count.get(d.title, 0) < per_document:
            taken.append(d)
            count[d.title] = count.get(d.title, 0) + 1
        else:
            skipped.append(d)
        if len(taken) == top_n:
            return taken
    keep = {id(d) for d in taken + skipped[: top_n - len(taken)]}
    return [d for d in ordered if id(d) in keep]


class Reranker:
    def __init__(self, settings: Settings, index: PassageIndex | None = None) -> None:
        self._settings = settings.rerank
        self._cross = None
        self._rrf_k = settings.retrieve.rrf_k
        self._index = None
        if self._settings.cross_encoder:
            from sentence_transformers import CrossEncoder

            self._cross = CrossEncoder(self._settings.cross_encoder, device="cpu")
        else:
            self._index = index or PassageIndex(settings)

    @property
    def method(self) -> str:
        return "cross-encoder" if self._cross is not None else "dense-cosine"

    def score(self, query: str, docs: list[Document]) -> list[float]:
        texts = [PassageIndex.passage_text(d.title, d.text) for d in docs]
        if self._cross is not None:
            logits = self._cross.predict([(query, t) for t in texts], show_progress_bar=False)
            return [1.0 / (1.0 + math.exp(-float(x))) for x in np.atleast_1d(logits)]
        index = self._index
        query_vector = index.embed([query])[0]
        rows = [index.row_of.get(d.id) for d in docs]
        # passages not in this index (another corpus) are embedded here
        missing = [t for t, r in zip(texts, rows, strict=True) if r is None]
        extra = iter(index.embed(missing)) if missing else iter(())
        vectors = [index.embeddings[r] if r is not None else next(extra) for r in rows]
        return [float(v @ query_vector) for v in vectors]

    def rerank(self, query: str, docs: list[Document], top_n: int) -> list[Document]:
        """The `top_n` passages for the prompt, best first; `score` stays the rerank model's
        score (the route rule's scale), `scores` keeps how the order was reached."""
        if not docs:
            return []
        scored = [d.model_copy(update={"score": round(s, 6),
                                       "scores": {**d.scores, "retrieve": d.score}})
                  for d, s in zip(docs, self.score(query, docs), strict=True)]
        # Stable sorts: ties keep the retrieval order.
        by_model = sorted(scored, key=lambda d: -d.score)
        if self._cross is None:
            k = self._rrf_k
            model_rank = {d.id: r for r, d in enumerate(by_model, 1)}
            for retrieval_rank, d in enumerate(scored, 1):
                d.scores["rerank_fused"] = round(
                    1 / (k + model_rank[d.id]) + 1 / (k + retrieval_rank), 6)
            # Ties (a passage first in one order, second in the other) go to the model's order.
            ordered = sorted(by_model, key=lambda d: -d.scores["rerank_fused"])
        else:
            ordered = by_model
        return diverse(ordered, top_n, self._settings.max_per_document)

    def run(self, state: PipelineState) -> PipelineState:
        state.reranked = self.rerank(state.query, state.retrieved, self._settings.top_n)
        return state

"""Rerank: score the retrieved passages against the query and keep the best few.

Default: cosine similarity between the query's MiniLM embedding and the passages' stored
embeddings (only the query is embedded per request). With `rerank.cross_encoder` set: a
sentence-transformers CrossEncoder, its logits squashed to 0..1 so the route rule reads one scale.
"""

from __future__ import annotations

import math

import numpy as np

from shared_pipeline.config import Settings
from shared_pipeline.index import PassageIndex
from shared_pipeline.schemas import Document, PipelineState


class Reranker:
    def __init__(self, settings: Settings, index: PassageIndex | None = None) -> None:
        self._settings = settings.rerank
        self._cross = None
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
        if not docs:
            return []
        scored = [d.model_copy(update={"score": round(s, 6),
                                       "scores": {**d.scores, "retrieve": d.score}})
                  for d, s in zip(docs, self.score(query, docs), strict=True)]
        scored.sort(key=lambda d: -d.score)
        return scored[:top_n]

    def run(self, state: PipelineState) -> PipelineState:
        state.reranked = self.rerank(state.query, state.retrieved, self._settings.top_n)
        return state

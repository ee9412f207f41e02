"""The prepared retrieval index, loaded: passages, BM25, passage embeddings and the encoder.

Retriever and dense reranker both read it; the reranker reuses the stored passage vectors and
embeds only the query, so a KServe reranker server and a Ray reranker replica load the same
files the retriever does and never re-embed passages per request.
"""

from __future__ import annotations

import numpy as np

from shared_pipeline.assets import embedding_model_path, index_dir
from shared_pipeline.config import Settings
from shared_pipeline.corpus import Passage


class PassageIndex:
    def __init__(self, settings: Settings) -> None:
        from sentence_transformers import SentenceTransformer

        folder = index_dir(settings)
        with (folder / "passages.jsonl").open(encoding="utf-8") as fh:
            self.passages = [Passage.model_validate_json(line) for line in fh]
        self.row_of = {p.id: i for i, p in enumerate(self.passages)}
        self.embeddings = np.load(folder / "embeddings.npy")
        self.folder = folder
        self.encoder = SentenceTransformer(
            str(embedding_model_path(settings.retrieve.embedding_model)), device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)

    @staticmethod
    def passage_text(title: str, text: str) -> str:
        """What gets embedded and BM25-indexed for a passage: its source title, then its text."""
        return f"{title}: {text}"

"""Post-process: clean the text, enforce the length limit, attach citations.

A passage is cited when the answer names it (`[2]`) or when at least `min_overlap` of the
answer's content words occur in it; an answer that cites nothing is flagged, not hidden. Streaming
answers go through `clean_delta` chunk by chunk and through `finish` once at the end.
"""

from __future__ import annotations

import hashlib
import re

from shared_pipeline.config import Settings
from shared_pipeline.schemas import Answer, Citation, Document, PipelineState

_MARKER = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[a-z_][a-z0-9_]{3,}")
_STOPWORDS = frozenset((
    "this", "that", "with", "from", "have", "will", "which", "their", "there", "they", "them",
    "then", "than", "when", "what", "where", "your", "been", "were", "also", "into", "only",
    "such", "used", "uses", "using", "each", "other", "more", "most", "must", "some", "does",
    "following", "passage", "passages", "answer", "python",
))


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def clean_text(text: str) -> str:
    """Collapse whitespace runs and strip chat-template debris the model may echo."""
    text = re.sub(r"<\|im_(start|end)\|>(assistant|user|system)?", "", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def cite(answer: str, docs: list[Document], min_overlap: float) -> list[Citation]:
    named = {int(n) for n in _MARKER.findall(answer)}
    words = content_words(_MARKER.sub(" ", answer))
    cited = []
    for i, doc in enumerate(docs, 1):
        overlap = len(words & content_words(doc.text)) / len(words) if words else 0.0
        if i in named or overlap >= min_overlap:
            cited.append(Citation(id=doc.id, title=doc.title, score=doc.score))
    return cited


class InjectedFault(RuntimeError):
    """The failure `postprocess.fail_ratio` injects (a deliberately bad revision)."""


def fails_on_purpose(request_id: str, ratio: float) -> bool:
    """Whether `request_id` is in the `ratio` share of requests a bad revision fails. Decided by
    a hash of the id, so a given request fails the same way on every stack and every retry."""
    if ratio <= 0:
        return False
    draw = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:4], "big") / 2**32
    return draw < ratio


class PostProcessor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings.postprocess

    def limit(self, text: str) -> tuple[str, bool]:
        """Cut at the length limit, on a word boundary where one is near."""
        cap = self._settings.max_answer_chars
        if len(text) <= cap:
            return text, False
        cut = text[:cap]
        space = cut.rfind(" ")
        return (cut[:space] if space > cap * 0.8 else cut).rstrip() + "…", True

    def clean_delta(self, emitted: int, delta: str) -> str:
        """Per-chunk work while streaming: drop template debris, stop at the length limit."""
        delta = re.sub(r"<\|im_(start|end)\|>", "", delta)
        return delta[: max(0, self._settings.max_answer_chars - emitted)]

    def finish(self, state: PipelineState) -> PipelineState:
        if fails_on_purpose(state.request_id, self._settings.fail_ratio):
            raise InjectedFault(f"injected fault (postprocess.fail_ratio="
                                f"{self._settings.fail_ratio:g})")
        raw = state.completion.text if state.completion else ""
        text, truncated = self.limit(clean_text(raw))
        citations = cite(text, state.reranked, self._settings.min_overlap)
        state.answer = Answer(text=text, citations=citations, cites_nothing=not citations,
                              truncated=truncated)
        return state

    run = finish

"""Passages to retrieve from: the Python language reference by default, or a user's corpus.

A passage's `title` is where it came from (the pydoc topic key, a file name, or the JSONL title),
so citations and the retrieval-recall questions can name the source.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel

from shared_pipeline.config import CorpusSettings


class Passage(BaseModel):
    id: str
    title: str
    text: str


def _words_windows(text: str, size: int, overlap: int) -> Iterator[str]:
    """Cut text into windows of `size` words that share `overlap` words with the previous one."""
    words = text.split()
    if not words:
        return
    step = max(1, size - overlap)
    for start in range(0, len(words), step):
        yield " ".join(words[start:start + size])
        if start + size >= len(words):
            break


def chunk(title: str, text: str, settings: CorpusSettings, id_prefix: str) -> list[Passage]:
    """Passages of one document; paragraphs are kept together where they fit."""
    text = re.sub(r"[ \t]+", " ", text)
    pieces = _words_windows(text, settings.chunk_words, settings.chunk_overlap_words)
    return [Passage(id=f"{id_prefix}#{i}", title=title, text=piece)
            for i, piece in enumerate(pieces)]


def _pydoc_documents() -> Iterable[tuple[str, str]]:
    from pydoc_data.topics import topics

    return sorted(topics.items())


def _folder_documents(folder: Path) -> Iterable[tuple[str, str]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".md", ".txt"} and p.is_file())
    if not files:
        raise ValueError(f"corpus folder {folder} holds no .md or .txt files")
    for path in files:
        yield str(path.relative_to(folder)), path.read_text(encoding="utf-8", errors="replace")


def _jsonl_documents(path: Path) -> Iterable[tuple[str, str]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "text" not in row:
                raise ValueError(f"{path}:{line_no}: a JSONL row needs a 'text' field")
            yield str(row.get("title") or row.get("id") or f"row-{line_no}"), row["text"]


def load_passages(settings: CorpusSettings) -> list[Passage]:
    """All passages of the configured corpus, in a stable order."""
    if settings.source == "pydoc":
        documents = _pydoc_documents()
    else:
        path = Path(settings.source).expanduser()
        if path.is_dir():
            documents = _folder_documents(path)
        elif path.suffix == ".jsonl" and path.is_file():
            documents = _jsonl_documents(path)
        else:
            raise ValueError(f"corpus source {settings.source!r} is neither 'pydoc', a folder "
                             "of .md/.txt files, nor a .jsonl file")
    passages: list[Passage] = []
    for title, text in documents:
        passages.extend(chunk(title, text, settings, id_prefix=title))
    if not passages:
        raise ValueError(f"corpus {settings.source!r} produced no passages")
    return passages


def corpus_fingerprint(passages: list[Passage]) -> str:
    """A short hash of the passages: a changed corpus or chunking gives a new index key."""
    digest = hashlib.sha256()
    for p in passages:
        digest.update(p.id.encode())
        digest.update(b"\0")
        digest.update(p.text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]

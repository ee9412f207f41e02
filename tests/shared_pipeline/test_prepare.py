"""`twinserve prepare`: cached, keyed by corpus and model, idempotent, user corpora."""

from __future__ import annotations

import json

from rich.console import Console

from shared_pipeline.config import CorpusSettings, Settings
from shared_pipeline.corpus import load_passages
from shared_pipeline.stages.retrieve import Retriever
from twinserve.prepare import prepare


def user_settings(tmp_path, source, settings: Settings) -> Settings:
    """A user corpus in its own cache, reusing the session's converted model."""
    return Settings(cache_dir=tmp_path / "cache", corpus=CorpusSettings(source=str(source)),
                    generate=settings.generate.model_copy(update={"model_dir": settings.model_dir}))


def test_second_run_does_nothing_and_says_so(settings) -> None:
    console = Console(record=True, width=200)
    assert prepare(settings, console) is False
    assert "nothing to do" in console.export_text()


def test_folder_corpus_builds_and_changed_corpus_rebuilds(tmp_path, settings) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kettle.md").write_text("The kettle boils water for tea in about three minutes.")
    (docs / "bike.txt").write_text("A bicycle chain needs oil every few hundred kilometres.")
    s = user_settings(tmp_path, docs, settings)
    assert prepare(s, Console(quiet=True)) is True
    assert prepare(s, Console(quiet=True)) is False
    hits = Retriever(s).search("how long to boil water", 1)
    assert hits[0].title == "kettle.md"

    (docs / "bike.txt").write_text("Bicycle tyres should be pumped to the pressure on the wall.")
    assert prepare(s, Console(quiet=True)) is True  # corpus changed -> new key -> rebuilt
    assert "pressure" in Retriever(s).search("tyre pressure", 1)[0].text


def test_jsonl_corpus(tmp_path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"title": "alpha", "text": "one two three " * 100}, {"id": "b", "text": "four five"}]))
    passages = load_passages(CorpusSettings(source=str(path), chunk_words=50,
                                            chunk_overlap_words=10))
    assert {p.title for p in passages} == {"alpha", "b"}
    assert sum(p.title == "alpha" for p in passages) == 8  # 300 words, windows of 50 step 40
    assert len({p.id for p in passages}) == len(passages)

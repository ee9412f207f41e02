"""Settings: defaults, then YAML, then environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared_pipeline.config import Settings


def test_yaml_then_environment(tmp_path, monkeypatch) -> None:
    yaml_file = tmp_path / "twinserve.yaml"
    yaml_file.write_text("revision_name: b\ngenerate:\n  max_tokens_unused: 1\n")
    monkeypatch.setenv("TWINSERVE_CONFIG", str(yaml_file))
    with pytest.raises(ValidationError, match="max_tokens_unused"):  # typos are refused
        Settings()
    yaml_file.write_text("revision_name: b\ngenerate:\n  batch_max_size: 4\n  batch_wait_ms: 5\n")
    monkeypatch.setenv("TWINSERVE_GENERATE__BATCH_WAIT_MS", "30")
    s = Settings()
    assert s.revision_name == "b"
    assert s.generate.batch_max_size == 4  # from YAML
    assert s.generate.batch_wait_ms == 30  # environment beats YAML
    assert s.generate.engine is None  # default kept: each stack's own engine
    assert (s.generate.engine_for("kserve"), s.generate.engine_for("rayserve")) == (
        "transformers", "vllm")


def test_model_dir_follows_cache_dir(tmp_path) -> None:
    s = Settings(cache_dir=tmp_path)
    assert s.model_dir == tmp_path / "models" / "smollm2-135m-instruct"

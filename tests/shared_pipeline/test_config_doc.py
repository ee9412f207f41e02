"""docs/configuration.md is exactly what the settings model generates."""

from __future__ import annotations

from pathlib import Path

from shared_pipeline.config import Settings
from shared_pipeline.config_doc import render, rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is stale: python -m shared_pipeline.config_doc > "
        "docs/configuration.md")


def test_every_setting_has_a_row_with_its_model_default() -> None:
    table = {row[0].strip("`"): row for row in rows()}
    assert table["generate.max_queue"][3] == "`16`"
    assert table["generate.vllm.enforce_eager"][3] == "`False`"  # not the tests' environment
    assert table["generate.engine"][3] == "`None`"
    assert table["generate.tiers.large.model"][1] == "`TWINSERVE_GENERATE__TIERS__LARGE__MODEL`"
    leaves = {"generate.tiers.small.vllm.max_num_seqs", "route.complex_markers", "cache_dir"}
    assert leaves <= set(table)
    assert len(table) == sum(1 for _ in rows(Settings))
    assert all(row[4] for row in table.values()), "a setting without a description"

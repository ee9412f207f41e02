"""The launcher's pure parts: which engine each stack runs, and reading it back from /metrics."""

from __future__ import annotations

import pytest

from loadtests.stacks import detect_engine, engine_for, launch, with_engine
from shared_pipeline.config import Settings


def test_engines_differ_by_default_and_match_under_parity():
    settings = Settings()
    assert engine_for("kserve", settings, False) == "transformers"
    assert engine_for("rayserve", settings, False) == "vllm"
    assert engine_for("inprocess", settings, False) == "transformers"
    vllm = with_engine(settings, "vllm")
    assert {engine_for(s, vllm, True) for s in ("kserve", "rayserve", "inprocess")} == {"vllm"}
    assert settings.generate.engine is None  # with_engine copies


def test_engine_is_read_back_from_the_exposed_metrics():
    pipeline = 'pipeline_requests_total{stack="kserve",status="ok",tier="small"} 1.0\n'
    assert detect_engine([pipeline]) == "transformers"
    assert detect_engine([pipeline, 'vllm:num_requests_waiting{engine="0"} 0.0\n']) == "vllm"
    assert detect_engine(['ray_vllm_num_requests_waiting{ReplicaId="x"} 0\n', pipeline]) == "vllm"
    assert detect_engine([]) is None
    assert detect_engine(["# nothing here\n"]) is None


def test_unknown_stack_is_refused(tmp_path):
    with pytest.raises(KeyError, match="known: kserve, rayserve, inprocess"), \
            launch("triton", Settings(), tmp_path):
        pass

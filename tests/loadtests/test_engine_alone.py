"""The engine-alone row's inputs: prompts padded to a token length, and the vLLM server flags
(no server is started here; the compare smoke test runs it)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from loadtests.engine_alone import padded_prompts, prompt_length, vllm_server_args
from loadtests.references import compare_stacks, reference_name
from shared_pipeline.config import Settings
from shared_pipeline.generate_settings import compute_dtype


def test_prompts_are_padded_to_the_target_length(settings: Settings):
    if not (settings.model_dir / "config.json").exists():
        pytest.skip("the generator checkpoint is not prepared (`twinserve prepare`)")
    tokenizer = AutoTokenizer.from_pretrained(settings.model_dir)
    prompts = padded_prompts(settings.model_dir, 400, ["What is a decorator?", "What is yield?"],
                             count=3)
    lengths = [prompt_length(tokenizer, p) for p in prompts]
    assert all(390 <= n <= 400 for n in lengths), lengths  # within a few words of the target
    assert len({p[:60] for p in prompts}) == 3  # no two start alike (no shared cached prefix)


def test_server_flags_follow_the_generate_settings():
    settings = Settings.model_validate({"generate": {
        "max_model_len": 1024, "vllm": {"cpu_kv_cache_gib": 3, "enforce_eager": True}}})
    flags, env = vllm_server_args(settings)
    assert flags[flags.index("--max-model-len") + 1] == "1024"
    # the stacks' compute dtype on this host (auto: bfloat16 only where native)
    assert flags[flags.index("--dtype") + 1] == compute_dtype(settings.generate, "cpu")
    assert "--enforce-eager" in flags
    assert flags[flags.index("--host") + 1] == "127.0.0.1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"
    eager_off = Settings.model_validate({"generate": {"vllm": {"enforce_eager": False}}})
    assert "--enforce-eager" not in vllm_server_args(eager_off)[0]


def test_one_reference_per_engine_and_one_under_parity():
    settings = Settings()
    assert compare_stacks(settings, False) == ("inprocess", "inprocess-vllm", "engine-alone",
                                               "kserve", "rayserve")
    assert compare_stacks(settings, True) == ("inprocess", "engine-alone", "kserve", "rayserve")
    assert reference_name("transformers", settings) == "inprocess"
    assert reference_name("vllm", settings) == "inprocess-vllm"

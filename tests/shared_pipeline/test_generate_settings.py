"""The generate section: tier models, engine precedence, vLLM flags rendered once, devices."""

from __future__ import annotations

import pytest
import torch

from shared_pipeline.config import Settings
from shared_pipeline.engines.base import make_engine
from shared_pipeline.engines.device import DeviceUnavailable, torch_device
from shared_pipeline.generate_settings import (
    GenerateSettings,
    compute_dtype,
    native_bf16,
    vllm_engine_kwargs,
    vllm_server_args,
)


def test_engine_flags_default_to_vllms_own() -> None:
    """enforce_eager is vLLM's default (False) in the model; only the test run turns it on."""
    assert GenerateSettings.model_fields["vllm"].default.enforce_eager is False
    assert Settings().generate.vllm.enforce_eager is True  # tests/conftest.py, for start time


def test_both_tiers_default_to_the_prepared_checkpoint(tmp_path) -> None:
    s = Settings(cache_dir=tmp_path)
    assert s.tier_model("small") == s.tier_model("large") == str(s.model_dir)
    assert s.served_model_name("large") == "smollm2-135m-instruct"
    assert s.vllm_cache_dir == tmp_path / "vllm"


def test_each_tier_has_its_own_model_engine_and_flags(monkeypatch) -> None:
    monkeypatch.setenv("TWINSERVE_GENERATE__TIERS__LARGE__MODEL", "/mnt/models")
    monkeypatch.setenv("TWINSERVE_GENERATE__TIERS__LARGE__SERVED_MODEL_NAME", "qwen-7b")
    monkeypatch.setenv("TWINSERVE_GENERATE__TIERS__LARGE__ENGINE", "vllm")
    monkeypatch.setenv("TWINSERVE_GENERATE__TIERS__LARGE__VLLM__TENSOR_PARALLEL_SIZE", "2")
    s = Settings()
    assert s.tier_model("large") == "/mnt/models" and s.served_model_name("large") == "qwen-7b"
    assert s.generate.engine_for("kserve", "large") == "vllm"  # the tier's own engine wins
    assert s.generate.engine_for("kserve", "small") == "transformers"  # the stack's own
    assert s.generate.vllm_for("large").tensor_parallel_size == 2
    assert s.generate.vllm_for("small").tensor_parallel_size == 1
    parity = s.model_copy(update={"generate": s.generate.model_copy(update={"engine": "vllm"})})
    assert parity.generate.engine_for("kserve", "small") == "vllm"


def test_vllm_flags_render_the_same_for_the_engine_and_vllms_server() -> None:
    generate = GenerateSettings.model_validate({
        "dtype": "float16", "max_model_len": 4096,
        "vllm": {"enforce_eager": False, "gpu_memory_utilization": 0.85, "max_num_seqs": 64,
                 "quantization": "awq", "tensor_parallel_size": 1},
        "tiers": {"large": {"vllm": {"tensor_parallel_size": 2, "enforce_eager": True}}}})
    kwargs = vllm_engine_kwargs(generate, "large", "/mnt/models", "cuda")
    assert kwargs == {"model": "/mnt/models", "dtype": "float16", "max_model_len": 4096,
                      "enforce_eager": True, "gpu_memory_utilization": 0.85,
                      "tensor_parallel_size": 2, "max_num_seqs": 64, "quantization": "awq"}
    assert vllm_server_args(generate, "small", "/m", "small-model", device="cpu") == [
        "--model", "/m", "--dtype", "float16", "--max-model-len", "4096",
        "--gpu-memory-utilization", "0.85", "--tensor-parallel-size", "1",
        "--max-num-seqs", "64", "--quantization", "awq", "--served-model-name", "small-model"]
    # vLLM's own argument parser reads the server flags back into the same engine arguments.
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = AsyncEngineArgs.add_cli_args(FlexibleArgumentParser())
    parsed = parser.parse_args(vllm_server_args(generate, "large", "/mnt/models", device="cuda"))
    assert {key: getattr(parsed, key) for key in kwargs} == kwargs


def test_auto_dtype_is_bfloat16_only_where_the_hardware_computes_it() -> None:
    auto = GenerateSettings()
    assert auto.dtype == "auto"
    assert compute_dtype(auto, "cuda") == "bfloat16"
    assert native_bf16("cpu", {"avx2", "avx512f", "avx512_bf16"})
    assert native_bf16("cpu", {"avx2", "amx_bf16"})
    assert not native_bf16("cpu", {"avx2", "fma"})  # AVX2 only: torch emulates bfloat16
    assert compute_dtype(auto, "cpu") == ("bfloat16" if native_bf16("cpu") else "float32")
    pinned = GenerateSettings(dtype="float16")
    assert compute_dtype(pinned, "cpu") == compute_dtype(pinned, "cuda") == "float16"
    auto_flags = vllm_server_args(auto, "small", "/m", device="cuda")
    assert auto_flags[auto_flags.index("--dtype") + 1] == "bfloat16"


def test_a_tier_override_typo_is_refused() -> None:
    with pytest.raises(ValueError, match="tensor_paralel_size"):
        GenerateSettings.model_validate({"tiers": {"small": {"vllm": {
            "tensor_paralel_size": 2}}}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure without a GPU")
def test_cuda_without_a_gpu_fails_loudly_at_load(settings: Settings) -> None:
    cuda = settings.model_copy(update={"generate": settings.generate.model_copy(
        update={"device": "cuda"})})
    assert torch_device("auto") == "cpu"
    for engine in ("transformers", "vllm"):
        with pytest.raises(DeviceUnavailable, match=r"generate\.device is 'cuda'"):
            make_engine(cuda, engine)


def test_vllms_own_server_gets_the_engines_flags_and_cache(tmp_path, monkeypatch) -> None:
    from shared_pipeline.engines.vllm_server import vllm_server_command

    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    monkeypatch.delenv("VLLM_USE_AOT_COMPILE", raising=False)
    s = Settings(cache_dir=tmp_path)
    argv, env = vllm_server_command(s, "large", port=8123)
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[3:-4] == vllm_server_args(s.generate, "large", s.tier_model("large"),
                                          "smollm2-135m-instruct", device="cpu")
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "8123"]
    assert "--enforce-eager" in argv  # the test run's setting reaches vLLM's server too
    assert env["VLLM_CACHE_ROOT"] == str(tmp_path / "vllm")
    assert env["VLLM_USE_AOT_COMPILE"] == "0"  # the cache that loads (vllm_server.vllm_env)
    monkeypatch.setenv("VLLM_USE_AOT_COMPILE", "1")
    assert vllm_server_command(s, "large")[1]["VLLM_USE_AOT_COMPILE"] == "1"  # the caller wins

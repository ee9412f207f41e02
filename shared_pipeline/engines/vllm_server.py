"""vLLM's own OpenAI server started with exactly the stacks' engine settings.

The "engine alone" row of a comparison is the limit each stack is measured against, so it must
run the same model, flags and caches as the stacks' engines: the flags come from
`vllm_server_args` (the rendering `VLLMEngine` uses too), the environment from `vllm_env`.
"""

from __future__ import annotations

import os
import sys

from shared_pipeline.config import Settings, Tier
from shared_pipeline.generate_settings import vllm_server_args


def vllm_env(settings: Settings, tier: Tier) -> dict[str, str]:
    """The environment variables `VLLMEngine` sets before vLLM starts (unless already set).

    `VLLM_USE_AOT_COMPILE=0`: vLLM 0.32 with torch 2.13 saves an AOT-compiled model it then
    cannot load ("'function' object has no attribute 'finalize_loading'") and compiles again on
    every start; its older cache (Dynamo trace, inductor artifacts) does load. Measured on the
    2-core box, vLLM's own server ready in 211 s with the failing AOT cache against 154 s from
    the older one (docs/results/startup-2026-12-02). `VLLM_USE_AOT_COMPILE=1` restores vLLM's
    default, e.g. on a GPU image whose torch loads it.
    """
    wanted = {"VLLM_CACHE_ROOT": str(settings.vllm_cache_dir),
              "VLLM_CPU_KVCACHE_SPACE": str(settings.generate.vllm_for(tier).cpu_kv_cache_gib),
              "VLLM_USE_AOT_COMPILE": "0"}
    return {key: os.environ.get(key, value) for key, value in wanted.items()}


def vllm_server_command(settings: Settings, tier: Tier = "small", *, host: str = "127.0.0.1",
                        port: int = 8000) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for `python -m vllm.entrypoints.openai.api_server` serving
    `tier`'s model under its served name, on loopback by default."""
    from shared_pipeline.engines.device import check_vllm_device  # imports vLLM's platform

    device = check_vllm_device(settings.generate.device)  # this host's vLLM build decides
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            *vllm_server_args(settings.generate, tier, settings.tier_model(tier),
                              settings.served_model_name(tier), device=device),
            "--host", host, "--port", str(port)]
    return argv, vllm_env(settings, tier)

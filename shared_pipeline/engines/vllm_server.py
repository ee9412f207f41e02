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
    """The environment variables `VLLMEngine` sets before vLLM starts (unless already set)."""
    wanted = {"VLLM_CACHE_ROOT": str(settings.vllm_cache_dir),
              "VLLM_CPU_KVCACHE_SPACE": str(settings.generate.vllm_for(tier).cpu_kv_cache_gib)}
    return {key: os.environ.get(key, value) for key, value in wanted.items()}


def vllm_server_command(settings: Settings, tier: Tier = "small", *, host: str = "127.0.0.1",
                        port: int = 8000) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for `python -m vllm.entrypoints.openai.api_server` serving
    `tier`'s model under its served name, on loopback by default."""
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            *vllm_server_args(settings.generate, tier, settings.tier_model(tier),
                              settings.served_model_name(tier)),
            "--host", host, "--port", str(port)]
    return argv, vllm_env(settings, tier)

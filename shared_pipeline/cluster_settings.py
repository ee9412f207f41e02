"""The settings a cluster deployment runs with, written once for both stacks.

Both stacks read their model reference, device and vLLM flags from these overrides: KServe as
`TWINSERVE_*` environment variables from the `twinserve-settings` ConfigMap every
InferenceService loads (manifests/kserve/settings/), Ray as the application's builder args in
the RayService's serveConfigV2 (rayserve_impl/serve_config.py). Tests prove each manifest says
exactly this, so the two stacks cannot drift apart on a cluster.

Every generator loads its tier's model from /mnt/models: KServe's storage initializer mounts the
`STORAGE_URI` there, the RayService mounts the same PVC sub-path there on its tier's GPU group.
"""

from __future__ import annotations

from typing import Any

MODEL_MOUNT = "/mnt/models"
MODELS_PVC = "twinserve-models"
# tier -> the model's folder on the models PVC, which is also its served name.
GPU_TIER_MODELS = {"small": "smollm2-135m-instruct", "large": "qwen2.5-7b-instruct"}
CPU_TIER_MODELS = {"small": "smollm2-135m-instruct", "large": "smollm2-135m-instruct"}


def _tiers(models: dict[str, str]) -> dict[str, Any]:
    return {tier: {"model": MODEL_MOUNT, "served_model_name": name}
            for tier, name in models.items()}


# A GPU node (one GPU per generator replica): CUDA graphs on (vLLM's default), 90% of the GPU's
# memory for weights and KV cache, one GPU per replica, up to 64 sequences in a batch.
GPU_CLUSTER_SETTINGS: dict[str, Any] = {"generate": {
    "device": "cuda",
    "tiers": _tiers(GPU_TIER_MODELS),
    "vllm": {"enforce_eager": False, "gpu_memory_utilization": 0.9,
             "tensor_parallel_size": 1, "max_num_seqs": 64},
}}

# The CPU variant (clusters without GPUs): SmolLM2 for both tiers, from the same PVC.
CPU_CLUSTER_SETTINGS: dict[str, Any] = {"generate": {
    "device": "cpu",
    "tiers": _tiers(CPU_TIER_MODELS),
}}


def storage_uri(tier: str, models: dict[str, str] = GPU_TIER_MODELS) -> str:
    """What a KServe generator declares: its tier's model folder on the models PVC."""
    return f"pvc://{MODELS_PVC}/{models[tier]}"


def settings_env(overrides: dict[str, Any], prefix: str = "TWINSERVE_") -> dict[str, str]:
    """`overrides` as the environment variables pydantic-settings reads (`__` nests)."""
    env: dict[str, str] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            env.update(settings_env(value, name + "__"))
        else:
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env

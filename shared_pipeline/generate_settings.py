"""The `generate` section of the settings: engines, devices, vLLM's flags and the two tiers.

Kept apart from config.py because it is the part a GPU deployment edits: which model each tier
serves, on which device, with which engine flags. Both stacks and the engine-alone launcher read
vLLM's flags from here only (`vllm_engine_kwargs`, `vllm_server_args`), so they cannot drift.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EngineName = Literal["transformers", "vllm"]
Tier = Literal["small", "large"]
Device = Literal["auto", "cpu", "cuda"]
TIERS: tuple[Tier, ...] = ("small", "large")

# The engine each stack generates with while neither the tier nor `generate.engine` names one
# (DESIGN.md); `generate.engine` (engine parity) puts every stack on that one engine.
STACK_ENGINES: dict[str, EngineName] = {"inprocess": "transformers", "kserve": "transformers",
                                        "rayserve": "vllm"}


class Section(BaseModel):
    """A settings section: unknown keys are typos, refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class VLLMSettings(Section):
    """vLLM engine flags, passed as they are to `AsyncEngineArgs` and to vLLM's own server.

    The model length and dtype are not here: both engines honour them, so they live in
    `generate` (`max_model_len`, `dtype`) and are rendered with these flags.
    """

    # vLLM's own default (False): CUDA graphs on a GPU, torch.compile on CPU, compiled once and
    # cached under `<cache_dir>/vllm`. Tests set it True to skip the compile (tests/conftest.py).
    enforce_eager: bool = Field(False, description="skip CUDA graphs / torch.compile")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1,
                                          description="share of GPU memory vLLM may take")
    tensor_parallel_size: int = Field(1, gt=0, description="GPUs one replica shards over")
    max_num_seqs: int | None = Field(None, gt=0,
                                     description="sequences per batch (None: vLLM's default)")
    quantization: str | None = Field(None, description="e.g. awq, gptq, fp8 (None: as saved)")
    cpu_kv_cache_gib: int = Field(2, gt=0, description="KV cache on the CPU build (GiB)")


_SHARED = "None: as in generate.vllm"


class VLLMOverrides(Section):
    """A tier's changes to `generate.vllm`; unset fields keep the shared value."""

    enforce_eager: bool | None = Field(None, description=_SHARED)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description=_SHARED)
    tensor_parallel_size: int | None = Field(None, gt=0, description=_SHARED)
    max_num_seqs: int | None = Field(None, gt=0, description=_SHARED)
    quantization: str | None = Field(None, description=_SHARED)
    cpu_kv_cache_gib: int | None = Field(None, gt=0, description=_SHARED)


class TierSettings(Section):
    """One tier's generator: its model, and optionally its own engine and vLLM flags."""

    # A local checkpoint folder or a Hugging Face model id; None = the SmolLM2 checkpoint
    # `twinserve prepare` makes. On a cluster: /mnt/models (KServe's storage initializer, the
    # RayService's PVC mount).
    model: str | None = Field(None, description="checkpoint folder or model id (None: SmolLM2)")
    # What answers and /v1/models call the model; None = the folder's or id's last part.
    served_model_name: str | None = Field(None, description="name in answers (None: folder)")
    engine: EngineName | None = Field(None, description="this tier's engine (None: see engine)")
    vllm: VLLMOverrides = VLLMOverrides()


class TiersSettings(Section):
    small: TierSettings = TierSettings()
    large: TierSettings = TierSettings()


class GenerateSettings(Section):
    engine: EngineName | None = Field(None, description="every stack's engine (None: its own)")
    device: Device = Field("auto", description="auto: CUDA when visible; cuda fails without it")
    model_dir: Path | None = Field(None, description="SmolLM2 checkpoint (None: in cache_dir)")
    tiers: TiersSettings = TiersSettings()
    vllm: VLLMSettings = VLLMSettings()
    # auto: bfloat16 where the hardware computes it natively (a GPU, a CPU with avx512_bf16 or
    # amx_bf16), float32 on other CPUs, where torch emulates bfloat16: measured on an AVX2-only
    # EPYC, a prompt-sized bf16 matmul took 879 ms against 23 ms in float32.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="compute dtype, both engines (auto: bfloat16 where native)")
    max_model_len: int = Field(2048, gt=0, description="prompt + completion tokens")
    default_max_tokens: int = Field(64, gt=0, description="when the request sets none")
    # dynamic micro-batching (transformers engine)
    batch_max_size: int = Field(8, gt=0, description="requests in one generate call")
    batch_wait_ms: float = Field(15.0, ge=0, description="wait for a batch to fill")
    # Waiting requests (beyond the running batch) before new ones get 503 + Retry-After: two
    # batches' worth, the same bound as the Ray generator's max_queued_requests (16), so an
    # admitted request waits at most about two batch times instead of an unbounded queue.
    max_queue: int = Field(16, gt=0, description="waiting requests before new ones are rejected")
    # Each delta a stack streams costs a message at every boundary it crosses (Ray: generator ->
    # ingress -> proxy; KServe: generator -> orchestrator -> client), paid in CPU the engine
    # shares. Ray Serve LLM batches its streams the same way (`stream_batching_interval_ms`, 50 ms
    # by default). The in-process reference and vLLM's own server send every token.
    stream_batch_ms: float = Field(
        50.0, ge=0, description="a stack joins streamed deltas this long (first at once; 0: off)")
    # Fault injection for the rollback experiments (a "much slower generator" revision); 0 in
    # every shipped config.
    delay_ms: float = Field(0.0, ge=0, description="sleep before generating (fault injection)")
    prompt_template: str = Field(
        "You answer questions about Python using only the numbered passages below. "
        "Cite the passages you use as [1], [2]. Answer in at most three sentences.\n\n{passages}",
        description="system prompt; {passages} is replaced")

    def tier(self, tier: Tier) -> TierSettings:
        return getattr(self.tiers, tier)

    def engine_for(self, stack: str, tier: Tier | None = None) -> EngineName:
        """The engine `stack` runs for `tier`: the tier's, else the configured one, else the
        stack's own."""
        own = self.tier(tier).engine if tier else None
        return own or self.engine or STACK_ENGINES[stack]

    def vllm_for(self, tier: Tier) -> VLLMSettings:
        """`generate.vllm` with the tier's overrides applied."""
        changes = self.tier(tier).vllm.model_dump(exclude_none=True)
        return self.vllm.model_copy(update=changes)


@functools.cache
def host_cpu_flags() -> frozenset[str]:
    """This host's CPU flags from /proc/cpuinfo (none where it cannot be read), read once: the
    engines' flags are rendered per engine start and per report, and the host does not change."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    return frozenset(flag for line in text.splitlines() if line.startswith("flags")
                     for flag in line.split(":", 1)[1].split())


def native_bf16(device: str, cpu_flags: set[str] | frozenset[str] | None = None) -> bool:
    """Does `device` ('cuda' or 'cpu') compute bfloat16 natively? A CPU does with avx512_bf16
    or amx_bf16 (`cpu_flags`, default this host's)."""
    if device == "cuda":
        return True
    flags = host_cpu_flags() if cpu_flags is None else cpu_flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def compute_dtype(generate: GenerateSettings, device: str) -> str:
    """The dtype both engines load and compute in on `device`: `generate.dtype`, with `auto`
    resolved (bfloat16 where native, else float32)."""
    if generate.dtype != "auto":
        return generate.dtype
    return "bfloat16" if native_bf16(device) else "float32"


def vllm_engine_kwargs(generate: GenerateSettings, tier: Tier, model: str,
                       device: str) -> dict[str, Any]:
    """`AsyncEngineArgs(**...)` for `tier` on `device`: the one rendering of vLLM's flags."""
    flags = generate.vllm_for(tier)
    kwargs: dict[str, Any] = {
        "model": model, "dtype": compute_dtype(generate, device),
        "max_model_len": generate.max_model_len,
        "enforce_eager": flags.enforce_eager,
        "gpu_memory_utilization": flags.gpu_memory_utilization,
        "tensor_parallel_size": flags.tensor_parallel_size,
    }
    if flags.max_num_seqs is not None:
        kwargs["max_num_seqs"] = flags.max_num_seqs
    if flags.quantization is not None:
        kwargs["quantization"] = flags.quantization
    return kwargs


def vllm_server_args(generate: GenerateSettings, tier: Tier, model: str,
                     served_model_name: str | None = None, *, device: str) -> list[str]:
    """The same flags as `python -m vllm.entrypoints.openai.api_server` arguments (the
    engine-alone row runs vLLM's own server with exactly what the stacks run)."""
    args = []
    for key, value in vllm_engine_kwargs(generate, tier, model, device).items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                args.append(flag)
        else:
            args += [flag, str(value)]
    if served_model_name:
        args += ["--served-model-name", served_model_name]
    return args

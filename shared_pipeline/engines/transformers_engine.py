"""Hugging Face transformers generation with dynamic micro-batching.

Callers on the event loop submit a job and read its deltas from an asyncio queue. One worker
thread collects jobs into a batch (up to `batch_max_size`, or until `batch_wait_ms` after the first
arrives), runs one left-padded `generate`, and streams each row's new tokens back to its caller.
On CPU a static batch of 8 costs about 1.4x a single request (platform notes), so batching is
where the throughput comes from; continuous batching (`generate_batch`) was far slower here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from shared_pipeline.config import Settings, Tier
from shared_pipeline.engines.base import Delta, EngineOverloaded, SamplingParams
from shared_pipeline.engines.device import torch_device
from shared_pipeline.engines.torch_threads import pin_torch_threads
from shared_pipeline.generate_settings import compute_dtype

logger = logging.getLogger(__name__)


class _GenerateError:
    """Pushed onto a job's queue when its batch fails: the worker thread must never die on one
    batch's error, or every later caller would wait forever."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass
class _Job:
    prompt: str
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: bool = False

    def emit(self, item: object) -> None:
        if not self.cancelled:
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)

    @property
    def batch_key(self) -> tuple:
        """Jobs share a batch only if one `generate` call can honour all their parameters."""
        p = self.params
        return (p.temperature > 0, p.temperature, p.top_p, p.seed, p.ignore_eos,
                p.presence_penalty, p.frequency_penalty)  # stop strings are per row


class _RowStreamer(BaseStreamer):
    """Splits the batch's per-step tokens into per-job text deltas."""

    def __init__(self, jobs: list[_Job], tokenizer, prompt_tokens: list[int]) -> None:
        self._jobs = jobs
        self._tok = tokenizer
        self._prompt_tokens = prompt_tokens
        self._seen_prompt = False
        self.tokens: list[list[int]] = [[] for _ in jobs]
        self._text: list[str] = ["" for _ in jobs]  # emitted so far
        self._full: list[str] = ["" for _ in jobs]  # decoded so far, cut at a stop string
        self.done = [False for _ in jobs]

    def put(self, value: torch.Tensor) -> None:
        if not self._seen_prompt:  # generate() first hands the streamer the prompt ids
            self._seen_prompt = True
            return
        step = value.reshape(len(self._jobs), -1)[:, -1].tolist()
        for row, token in enumerate(step):
            job = self._jobs[row]
            if job.cancelled:  # its caller went away: the row stops (the batch goes on)
                self.done[row] = True
            if self.done[row]:
                continue
            finish = None
            if token == self._tok.eos_token_id and not job.params.ignore_eos:
                finish = "stop"
            else:
                self.tokens[row].append(token)
                if len(self.tokens[row]) >= job.params.max_tokens:
                    finish = "length"
            text = self._tok.decode(self.tokens[row], skip_special_tokens=True)
            if text.endswith("\ufffd") and finish is None:  # half a multi-byte character
                continue
            text, finish = _cut_at_stop(text, job.params.stop, finish)
            self._full[row] = text
            self._send(row, finish)

    def _send(self, row: int, finish: str | None) -> None:
        """Emit what is new; while a stop string could still be completing, hold back its
        length - 1 characters so no emitted text is ever taken back."""
        full, emitted = self._full[row], self._text[row]
        stops = self._jobs[row].params.stop
        hold = max(map(len, stops), default=1) - 1 if finish is None else 0
        visible = full[: max(len(emitted), len(full) - hold)]
        delta, self._text[row] = visible[len(emitted):], visible
        if finish:
            self.done[row] = True
        if delta or finish:
            self._jobs[row].emit(Delta(delta, len(self.tokens[row]), self._prompt_tokens[row],
                                       finish))

    def end(self) -> None:
        for row in range(len(self._jobs)):
            if not self.done[row]:
                self._send(row, "length")


def _cut_at_stop(text: str, stops: tuple[str, ...], finish: str | None
                 ) -> tuple[str, str | None]:
    """`text` up to the first stop string (which is dropped) and finish reason `stop`."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(found)], "stop") if found else (text, finish)


class _Penalties(LogitsProcessor):
    """OpenAI's presence and frequency penalties over the tokens generated so far (not the
    prompt, as vLLM counts them): transformers' own `repetition_penalty` is a different,
    multiplicative rule, so it cannot stand in for them."""

    def __init__(self, prompt_len: int, presence: float, frequency: float) -> None:
        self._prompt_len = prompt_len
        self._presence = presence
        self._frequency = frequency

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor
                 ) -> torch.FloatTensor:
        generated = input_ids[:, self._prompt_len:]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - counts * self._frequency - (counts > 0).to(scores.dtype) * self._presence


class _RowsDone(StoppingCriteria):
    """Stop each row at its own limit (per-row bool), the batch when every row is done."""

    def __init__(self, streamer: _RowStreamer) -> None:
        self._streamer = streamer

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        return torch.tensor(self._streamer.done, dtype=torch.bool, device=input_ids.device)


class TransformersEngine:
    """`Engine` over `AutoModelForCausalLM.generate`, one batch at a time, in a worker thread."""

    name = "transformers"

    def __init__(self, settings: Settings, tier: Tier = "small") -> None:
        self._settings = settings.generate
        # Decided before anything loads: `cuda` without a usable GPU fails here, at load.
        self.device = torch_device(settings.generate.device)
        self.dtype = compute_dtype(settings.generate, self.device)  # auto: bf16 where native
        self._model_dir = settings.tier_model(tier)
        self.model_name = settings.served_model_name(tier)
        self._pending: deque[_Job] = deque()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.tokenizer = AutoTokenizer.from_pretrained(self._model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = None
        # Generation's intra-op threads: this process's torch default (OMP_NUM_THREADS, else the
        # cores), read now, before a CPU stage's thread can have set the default to 1.
        self.torch_threads = torch.get_num_threads()
        self.generate_calls = 0  # batches run; tests read it to prove batching happens
        self.batch_sizes: list[int] = []

    async def start(self) -> None:
        if self._thread is not None:
            return
        started = time.perf_counter()
        self.model = await asyncio.to_thread(
            AutoModelForCausalLM.from_pretrained, self._model_dir,
            dtype=getattr(torch, self.dtype))
        self.model.to(self.device)  # generate.device, resolved in __init__
        self.model.eval()
        logger.info("transformers engine started in %.1f s: model %s on %s (%s)",
                    time.perf_counter() - started, self._model_dir, self.device, self.dtype)
        self._thread = threading.Thread(target=self._work, name="generate-batcher", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None

    def queue_depth(self) -> int:
        return len(self._pending)

    async def stream(self, prompt: str, params: SamplingParams,
                     request_id: str) -> AsyncIterator[Delta]:
        if self._thread is None:
            raise RuntimeError("engine not started")
        job = _Job(prompt, params, asyncio.get_running_loop(), asyncio.Queue())
        with self._wakeup:
            if len(self._pending) >= self._settings.max_queue:
                raise EngineOverloaded(len(self._pending), self._settings.max_queue)
            self._pending.append(job)
            self._wakeup.notify()
        try:
            while True:
                item = await job.out.get()
                if isinstance(item, _GenerateError):
                    raise RuntimeError(f"generation failed: {item.exc}") from item.exc
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            job.cancelled = True  # a caller that went away: its row stops at the next token

    # ------------------------------------------------------------ worker thread
    def _next_batch(self) -> list[_Job]:
        with self._wakeup:
            while not self._pending and not self._stopping:
                self._wakeup.wait()
            if self._stopping:
                return []
            first = self._pending[0]
            deadline = first.submitted + self._settings.batch_wait_ms / 1000
            while (len(self._pending) < self._settings.batch_max_size
                   and (remaining := deadline - time.perf_counter()) > 0):
                self._wakeup.wait(remaining)
            batch = [j for j in self._pending if j.batch_key == first.batch_key]
            batch = batch[: self._settings.batch_max_size]
            for job in batch:
                self._pending.remove(job)
            return [j for j in batch if not j.cancelled]

    def _work(self) -> None:
        torch.set_grad_enabled(False)
        # Pinned: kept whatever a CPU stage sets later (engines/torch_threads).
        self.torch_threads = pin_torch_threads(self.torch_threads)
        logger.info("generate thread: torch threads intra-op %d, inter-op %d", self.torch_threads,
                    torch.get_num_interop_threads())
        while not self._stopping:
            batch = self._next_batch()
            if batch:
                try:
                    self._generate(batch)
                except Exception as exc:
                    logger.exception("batch of %d failed", len(batch))
                    for job in batch:
                        job.emit(_GenerateError(exc))

    def _generate(self, batch: list[_Job]) -> None:
        enc = self.tokenizer([j.prompt for j in batch], return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.model.device)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        streamer = _RowStreamer(batch, self.tokenizer, prompt_tokens)
        params = batch[0].params
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p} \
            if params.temperature > 0 else {"do_sample": False}
        if params.seed is not None:
            torch.manual_seed(params.seed)
        max_new = max(j.params.max_tokens for j in batch)
        self.generate_calls += 1
        self.batch_sizes.append(len(batch))
        penalties = LogitsProcessorList()
        if params.presence_penalty or params.frequency_penalty:
            penalties.append(_Penalties(enc["input_ids"].shape[1], params.presence_penalty,
                                        params.frequency_penalty))
        self.model.generate(
            **enc, max_new_tokens=max_new, streamer=streamer, logits_processor=penalties,
            stopping_criteria=StoppingCriteriaList([_RowsDone(streamer)]),
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=None if params.ignore_eos else self.tokenizer.eos_token_id,
            **sampling)
        streamer.end()

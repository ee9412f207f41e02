"""One locust user for every stack: the OpenAI chat-completions API, streamed where it can be.

Measured on the client, per request (loadtesting.md, as `vllm bench serve` does):
- e2e: from just before the POST to the last byte. For a stream, locust's own row would stop at
  the response headers (its `response_time` is set when `requests` returns), so the row's time
  is overwritten with e2e before the `catch_response` block closes.
- TTFT: to the first chunk that carries generated text; fired as its own request event
  (`LLM ttft`), so locust's CSV/JSON carry it too.
- TPOT: (e2e - TTFT) / (tokens - 1), tokens from the final chunk's `usage`; fired as `LLM tpot`.
KServe answers through its InferenceGraph whole (the router buffers every step), so for it the
user sends `stream: false` (`--no-stream`) and records e2e only: TTFT and TPOT are not
measurable on the client there, and are left empty rather than faked.

Failures carry their reason: `<status> <error message>` from the OpenAI error body, `rejected
<status>: ...` for 429/503 (overload refusals), `stream cut ...` for a stream that ends without
`[DONE]` or with an in-band error. Every request is also appended to a JSONL file
(`--records`) with its phase, send time, schedule lateness, e2e/TTFT/TPOT, tokens, tier and
the server's own stage timings: the harness computes exact percentiles from those records.

The load phase (closed-loop concurrency, or open-loop constant / Poisson arrivals, see
shapes.py) comes as JSON in `TWINSERVE_LOAD_PHASE`; without it, plain `-u/-r/-t` apply:
    python -m locust -f loadtests/locustfile.py --headless -u 4 -t 60s --host http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, LoadTestShape, events, task
from locust.env import Environment

from loadtests.measure import failure_reason, retry_after, tpot_ms
from loadtests.shapes import (
    LOAD_END_ENV,
    PHASE_ENV,
    STOP_FILE_ENV,
    ArrivalPhase,
    ArrivalSchedule,
    arrival_offsets,
    parse_phase,
    shape_tick,
)
from shared_pipeline.samples import load_questions

# Raw prompts (the "engine alone" row: vLLM's own server given prompts padded to the
# pipeline's length) come as a JSON list in this file; otherwise the shipped sample questions.
PROMPTS_ENV = "TWINSERVE_PROMPTS_FILE"
QUESTIONS = (json.loads(Path(os.environ[PROMPTS_ENV]).read_text(encoding="utf-8"))
             if os.environ.get(PROMPTS_ENV) else [q.question for q in load_questions()])
REPEAT = int(os.environ.get("TWINSERVE_REPEAT", "0"))  # which repeat of the phase this run is
REQUEST_ID_HEADER = "x-request-id"
CHAT_PATH = "/v1/chat/completions"
PHASE = parse_phase(os.environ[PHASE_ENV]) if os.environ.get(PHASE_ENV) else None
# Experiments end a phase when their last action is done: the runner creates this file, the
# shape sees it and stops; users finish the request in hand (`--stop-timeout`).
STOP_FILE = os.environ.get(STOP_FILE_ENV)
LOAD_END_FILE = os.environ.get(LOAD_END_ENV)  # the shape writes the time the load ended here
_schedule: ArrivalSchedule | None = None
_sent = 0  # requests sent in this phase (a phase with `min_requests` runs until enough were)
_records_lock = threading.Lock()


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    """Our options; each also reads its `TWINSERVE_*` variable through locust's own `env_var`
    (the harness sets some by environment, some on the command line)."""
    parser.add_argument("--stack-name", default="unknown", env_var="TWINSERVE_STACK",
                        help="stack label written into every record")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                        env_var="TWINSERVE_STREAM",
                        help="--no-stream sends stream=false (KServe through its graph cannot "
                             "stream)")
    parser.add_argument("--max-tokens", type=int, default=48, env_var="TWINSERVE_MAX_TOKENS")
    parser.add_argument("--ignore-eos", action=argparse.BooleanOptionalAction, default=True,
                        env_var="TWINSERVE_IGNORE_EOS",
                        help="generate exactly --max-tokens tokens, the same work on every stack")
    parser.add_argument("--records", default="", env_var="TWINSERVE_RECORDS",
                        help="append one JSON line per request to this file")
    parser.add_argument("--model", default="pipeline", env_var="TWINSERVE_MODEL",
                        help="`model` of every request (the served model name for a plain "
                             "OpenAI server)")
    parser.add_argument("--request-timeout", type=float, default=180.0,
                        env_var="TWINSERVE_REQUEST_TIMEOUT")


@events.test_start.add_listener
def _start_schedule(environment: Environment, **_: Any) -> None:
    """Open-loop phases: one schedule for all users, its clock starting with the test."""
    global _schedule
    if isinstance(PHASE, ArrivalPhase):
        _schedule = ArrivalSchedule(arrival_offsets(PHASE.kind, PHASE.rate_rps,
                                                    PHASE.duration_s, PHASE.seed))


if PHASE is not None:
    class PhaseShape(LoadTestShape):
        """Runs the harness's phase, then stops the test (the only shape here: locust uses it;
        without a phase, no shape exists and plain -u/-r/-t apply)."""

        abstract = False

        def tick(self) -> tuple[int, float] | None:
            stopped = bool(STOP_FILE and os.path.exists(STOP_FILE))
            users = None if stopped else shape_tick(PHASE, self.get_run_time(), _sent)
            if users is None and LOAD_END_FILE and not os.path.exists(LOAD_END_FILE):
                Path(LOAD_END_FILE).write_text(repr(time.time()), encoding="utf-8")
            return users


class PipelineUser(HttpUser):
    """Asks the pipeline shipped sample questions, one at a time, as fast as it is answered
    (closed loop) or when the shared schedule says (open loop)."""

    def on_start(self) -> None:
        self.rng = random.Random(id(self))
        self.options = self.environment.parsed_options

    @task
    def ask(self) -> None:
        scheduled = None
        if _schedule is not None:
            scheduled = _schedule.claim()
            if scheduled is None:  # the phase's schedule is used up: idle until the shape stops
                gevent.sleep(1.0)
                return
            gevent.sleep(max(0.0, scheduled - time.monotonic()))
        record = self.send(self.rng.choice(QUESTIONS))
        if scheduled is not None:
            record["late_ms"] = round(max(0.0, record["sent_mono"] - scheduled) * 1000, 2)
        self.write(record)

    def body(self, question: str) -> dict[str, Any]:
        stream = self.options.stream
        body: dict[str, Any] = {"model": self.options.model, "stream": stream, "temperature": 0.0,
                                "max_tokens": self.options.max_tokens,
                                "ignore_eos": bool(self.options.ignore_eos),
                                "messages": [{"role": "user", "content": question}]}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def send(self, question: str) -> dict[str, Any]:
        global _sent
        _sent += 1
        stream = self.options.stream
        record: dict[str, Any] = {
            "stack": self.options.stack_name, "phase": PHASE.name if PHASE else None,
            "repeat": REPEAT, "request_id": uuid.uuid4().hex, "server_request_id": None,
            "stream": stream, "question": question[:200], "sent": time.time(),
            "ok": False, "status": None, "error": None, "rejected": False,
            "e2e_ms": None, "ttft_ms": None, "tpot_ms": None, "tokens": None, "chunks": 0,
            "tier": None, "server_ms": None, "hop_ms": None, "prompt_tokens": None}
        name = "chat stream" if stream else "chat"
        t0 = time.perf_counter()  # before post(): with stream=True post() returns at headers
        record["sent_mono"] = time.monotonic()
        try:
            with self.client.post(CHAT_PATH, json=self.body(question), stream=stream,
                                  headers={REQUEST_ID_HEADER: record["request_id"]},
                                  catch_response=True, name=name,
                                  timeout=self.options.request_timeout) as response:
                record["status"] = response.status_code
                if response.status_code >= 400 or response.status_code == 0:
                    self._refused(response, record)
                elif stream:
                    self._read_stream(response, record, t0)
                else:
                    self._read_whole(response, record, t0)
                if record["e2e_ms"] is None:
                    record["e2e_ms"] = (time.perf_counter() - t0) * 1000
                response.request_meta["response_time"] = record["e2e_ms"]
                if record["ok"]:
                    response.success()
                else:
                    response.failure(record["error"])
        except Exception as exc:
            record["error"] = f"client error: {type(exc).__name__}: {exc}"[:300]
        if record["ok"]:
            self._fire("ttft", record["ttft_ms"], record["tokens"])
            self._fire("tpot", record["tpot_ms"], record["tokens"])
        return record

    def _refused(self, response, record: dict[str, Any]) -> None:
        text = response.text if response.status_code else str(response.error)
        reason, rejected = failure_reason(response.status_code, text or "")
        hint, source = retry_after(response.headers.get("Retry-After"), text or "")
        record.update(error=reason, rejected=rejected, raw_error=(text or "")[:500],
                      retry_after=hint, retry_after_from=source)

    def _read_whole(self, response, record: dict[str, Any], t0: float) -> None:
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            record["error"] = f"{response.status_code} answer is not a chat.completion"
            return
        record["e2e_ms"] = (time.perf_counter() - t0) * 1000
        self._take_final(data, record)
        record["ok"] = isinstance(content, str)
        if not record["ok"]:
            record["error"] = f"{response.status_code} answer has no message content"

    def _read_stream(self, response, record: dict[str, Any], t0: float) -> None:
        done = False
        for line in response.iter_lines():
            if not line or not line.startswith(b"data:"):
                continue  # blank separators and `:` keep-alive comments
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            try:
                chunk = json.loads(payload)
            except ValueError:
                record["error"] = "stream cut: a data line is not JSON"
                return
            if "error" in chunk:
                err = chunk["error"]
                message = err.get("message") if isinstance(err, dict) else str(err)
                record["error"] = f"stream cut: {re.sub(r'[0-9]+', 'N', str(message))[:160]}"
                return
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                if record["ttft_ms"] is None:
                    record["ttft_ms"] = (time.perf_counter() - t0) * 1000
                record["chunks"] += 1
            if chunk.get("usage") or chunk.get("pipeline"):
                self._take_final(chunk, record)
        record["e2e_ms"] = (time.perf_counter() - t0) * 1000
        if not done:
            record["error"] = "stream cut before [DONE]"
        elif record["ttft_ms"] is None:
            record["error"] = "stream ended without generated text"
        else:
            record["ok"] = True
            tokens = record["tokens"] if record["tokens"] is not None else record["chunks"]
            record["tokens"] = tokens
            record["tpot_ms"] = tpot_ms(record["e2e_ms"], record["ttft_ms"], tokens)

    @staticmethod
    def _take_final(data: dict[str, Any], record: dict[str, Any]) -> None:
        usage = data.get("usage") or {}
        if usage.get("completion_tokens") is not None:
            record["tokens"] = usage["completion_tokens"]
        if usage.get("prompt_tokens") is not None:
            record["prompt_tokens"] = usage["prompt_tokens"]
        ext = data.get("pipeline") or {}
        record["server_request_id"] = ext.get("request_id", record["server_request_id"])
        record["hop_ms"] = ext.get("hop_ms", record["hop_ms"])
        record["tier"] = ext.get("tier", record["tier"])
        record["server_ms"] = ext.get("timings", record["server_ms"])
        record["revision"] = ext.get("revision")

    def _fire(self, name: str, value_ms: float | None, tokens: int | None) -> None:
        """A pseudo-request row per client-side metric, as locust's docs suggest."""
        if value_ms is None:
            return
        self.environment.events.request.fire(
            request_type="LLM", name=name, response_time=value_ms, response_length=tokens or 0,
            exception=None, context={})

    def write(self, record: dict[str, Any]) -> None:
        path = self.options.records
        if not path:
            return
        record.pop("sent_mono", None)
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with _records_lock, open(path, "a", encoding="utf-8") as f:
            f.write(line)

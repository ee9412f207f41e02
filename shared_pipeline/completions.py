"""`POST /v1/completions`: a `prompt` answered as the question, in the legacy completions shapes.

vLLM's benchmark client defaults to this endpoint and older SDK code still calls it. The pipeline
has one way to answer (retrieve, rerank, route, generate from a chat prompt), so a completions
request is translated to the chat request it means: the prompt becomes the one user turn, and
the sampling fields pass through to the chat request's validation unchanged (same limits, same
400s naming the same field). What only the completions API defines is checked here: `prompt` (a
string or a list of one string), `echo`, `n` and `logprobs` at their neutral values, vLLM's
`repetition_penalty` at 1 (the benchmark sends it). Anything else is refused as unknown.

The answer is the chat answer re-shaped (`text_completion`, `completion_chunks`), so every stack
keeps one pipeline and one answer builder; the `pipeline` extension is carried unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from shared_pipeline.config import Settings
from shared_pipeline.schemas import ChatCompletionRequest, RequestError, parse_chat_request

# Fields the completions request passes to the chat request as they are.
PASSED_ON = ("model", "max_tokens", "temperature", "top_p", "stop", "seed", "stream",
             "stream_options", "ignore_eos", "presence_penalty", "frequency_penalty", "user",
             "pipeline")
# Completions-only fields, accepted at the value that changes nothing.
NEUTRAL = {"echo": (False,), "n": (1,), "logprobs": (None,), "repetition_penalty": (1, 1.0),
           "suffix": (None,), "best_of": (None, 1)}
_WHY = {"echo": "the answer never repeats the prompt", "n": "one choice per request",
        "logprobs": "the pipeline returns no log probabilities",
        "repetition_penalty": "only 1 (no penalty) is honoured",
        "suffix": "the pipeline does not insert text", "best_of": "one choice per request"}


def _bad(param: str, message: str) -> RequestError:
    return RequestError(400, f"{param}: {message}", param)


def _is_neutral(value: Any, allowed: tuple[Any, ...]) -> bool:
    """`value` is one of `allowed`, of the same JSON type (so `0` is not `false`)."""
    return any(type(value) is type(a) and value == a for a in allowed)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise _bad("prompt", f"a list must hold exactly one prompt, got {len(prompt)}")
        prompt = prompt[0]
        where = "prompt.0"
    else:
        where = "prompt"
    if not isinstance(prompt, str):
        raise _bad(where, "must be a string (token-id prompts are not supported)")
    if not prompt:
        raise _bad(where, "must not be empty")
    return prompt


def as_chat_payload(payload: Any) -> dict[str, Any]:
    """The chat body a decoded completions body means; a 400 naming the field if refused."""
    if not isinstance(payload, dict):
        raise RequestError(400, f"request body must be a JSON object, not {type(payload).__name__}")
    if "prompt" not in payload:
        raise _bad("prompt", "field required")
    for name in payload:
        if name == "prompt" or name in PASSED_ON:
            continue
        if name not in NEUTRAL:
            raise _bad(name, "Extra inputs are not permitted")
        if not _is_neutral(payload[name], NEUTRAL[name]):
            raise _bad(name, f"{payload[name]!r} is not permitted here: {_WHY[name]}")
    chat = {k: payload[k] for k in PASSED_ON if k in payload}
    chat["messages"] = [{"role": "user", "content": _prompt_text(payload["prompt"])}]
    return chat


def parse_completion_request(payload: Any, settings: Settings) -> ChatCompletionRequest:
    """Validate a completions body as the chat request it means; errors name `prompt` where the
    chat validation found fault with the user turn made from it (e.g. input too long)."""
    chat = as_chat_payload(payload)
    try:
        return parse_chat_request(chat, settings)
    except RequestError as exc:
        raise as_prompt_error(exc) from None


def as_prompt_error(exc: RequestError) -> RequestError:
    """A chat refusal of the user turn made from the prompt, naming `prompt` instead."""
    if not (exc.param and exc.param.split(".")[0] == "messages"):
        return exc
    return RequestError(exc.status, exc.message.replace(exc.param, "prompt", 1), "prompt",
                        exc.kind, exc.retry_after_s)


def as_completion_answer(status: int, chat: Any) -> Any:
    """A decoded chat answer (whole, or an OpenAI error body) as the completions answer: for a
    server that only sees the chat answer (the KServe graph runner)."""
    if status == 200 and isinstance(chat, dict) and chat.get("object") == "chat.completion":
        return text_completion(chat)
    error = chat.get("error") if isinstance(chat, dict) else None
    if isinstance(error, dict) and isinstance(error.get("param"), str):
        refused = RequestError(status, error.get("message", ""), error["param"],
                               error.get("type", "invalid_request_error"),
                               error.get("retry_after_s"))
        return as_prompt_error(refused).to_body()
    return chat


# ---------------------------------------------------------------- answers
def _completion_id(chat_id: str) -> str:
    return "cmpl-" + chat_id.removeprefix("chatcmpl-")


def text_completion(chat: dict[str, Any]) -> dict[str, Any]:
    """A whole `chat.completion` as the `text_completion` it answers (works on the JSON, so the
    KServe graph runner can re-shape the graph's answer without the pipeline state)."""
    choice = chat["choices"][0]
    out = {"id": _completion_id(chat["id"]), "object": "text_completion",
           "created": chat["created"], "model": chat["model"],
           "choices": [{"index": 0, "text": choice["message"]["content"], "logprobs": None,
                        "finish_reason": choice["finish_reason"]}],
           "usage": chat.get("usage")}
    if "pipeline" in chat:
        out["pipeline"] = chat["pipeline"]
    return out


def completion_chunks(chunk: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The `text_completion` chunks for one `chat.completion.chunk` (none for the role-only
    first chunk; an error event passes unchanged).

    The last chat chunk carries the finish reason, usage and `pipeline`. As OpenAI servers do,
    with `include_usage` usage comes in one more chunk with empty `choices` (vLLM's benchmark
    reads token counts only there), and that chunk, the last, carries `pipeline`.
    """
    if "error" in chunk:
        return [chunk]
    head = {"id": _completion_id(chunk["id"]), "object": "text_completion",
            "created": chunk["created"], "model": chunk["model"]}
    choice = chunk["choices"][0]
    text, finish = choice["delta"].get("content") or "", choice["finish_reason"]
    if not text and finish is None:
        return []
    out = {**head, "choices": [{"index": 0, "text": text, "logprobs": None,
                                "finish_reason": finish}]}
    if finish is None:
        return [out]
    extra = {k: chunk[k] for k in ("usage", "pipeline") if k in chunk}
    if not include_usage:
        return [{**out, **extra}]
    return [out, {**head, "choices": [], **extra}]


def include_usage(request: ChatCompletionRequest) -> bool:
    return bool(request.stream_options and request.stream_options.include_usage)


async def as_completion_stream(chunks: AsyncIterable[dict[str, Any]],
                               usage_chunk: bool) -> AsyncIterator[dict[str, Any]]:
    """A stream of `chat.completion.chunk`s (or error events) as `text_completion` chunks."""
    async for chunk in chunks:
        for out in completion_chunks(chunk, usage_chunk):
            yield out

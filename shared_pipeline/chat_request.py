"""The OpenAI chat-completions request: what is accepted, what is honoured, what is refused.

The rule (DESIGN.md): every field the OpenAI chat API defines is accepted where the pipeline can
honour it (`stop`, the penalties, `seed`, ...) or where its value is neutral (`logprobs: false`,
`response_format: {"type": "text"}`, `tool_choice: "none"`, ...). A value that would change the
answer and cannot be honoured (`logprobs: true`, `tools`, a JSON response format, `n > 1`) is
refused with a 400 naming the field, never silently ignored; unknown fields stay refused.
`schemas.parse_chat_request` validates with this model and turns its errors into that 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationInfo,
    field_validator,
)

from shared_pipeline.config import Tier

PIPELINE_MODEL = "pipeline"
MAX_STOP = 4  # OpenAI's limit on stop sequences

# Tags of the two shapes `content` may take; pydantic puts them in an error's location, and
# `error_param` drops them so the 400 names the field as the client wrote it.
_CONTENT_TAGS = ("string", "parts")


def _not_permitted(field: str, why: str) -> ValueError:
    return ValueError(f"{field} is not permitted here: {why}")


# ---------------------------------------------------------------- messages
class TextPart(BaseModel):
    """One part of a list-valued `content`; only text parts: the pipeline reads no images."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: StrictStr


Content = Annotated[
    Annotated[StrictStr, Tag("string")] | Annotated[list[TextPart], Tag("parts")],
    Discriminator(lambda v: "parts" if isinstance(v, list) else "string"),
]


class Message(BaseModel):
    """One chat turn. After validation `content` is always a string (text parts joined by new
    lines, as vLLM's server joins them) and `developer`, the OpenAI SDK's newer name for
    `system`, is `system`: every stage and chat template sees one shape."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: Content

    @field_validator("role")
    @classmethod
    def _developer_is_system(cls, role: str) -> str:
        return "system" if role == "developer" else role

    @field_validator("content")
    @classmethod
    def _as_text(cls, content: str | list[TextPart]) -> str:
        text = content if isinstance(content, str) else "\n".join(p.text for p in content)
        if not text:
            raise ValueError("content must not be empty")
        return text


# ---------------------------------------------------------------- options
class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: StrictBool = False


class ResponseFormat(BaseModel):
    """Only plain text: nothing here constrains generation to JSON."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class PipelineOptions(BaseModel):
    """The `pipeline` extension of a request: retrieval depth and a forced tier."""

    model_config = ConfigDict(extra="forbid")

    top_k: StrictInt | None = Field(None, gt=0, le=50)
    tier: Tier | None = None


Penalty = Annotated[StrictFloat, Field(ge=-2.0, le=2.0)]  # strict floats still take ints


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat-completions request, validated against the configured limits.

    Validate with `schemas.parse_chat_request` so the limits (model length, input size) apply.
    """

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = PIPELINE_MODEL
    messages: list[Message] = Field(min_length=1)
    max_tokens: StrictInt | None = Field(None, gt=0)
    max_completion_tokens: StrictInt | None = Field(None, gt=0)
    temperature: StrictFloat = Field(0.0, ge=0.0, le=2.0)
    top_p: StrictFloat = Field(1.0, gt=0.0, le=1.0)
    seed: StrictInt | None = None
    stop: list[StrictStr] | None = None  # a single string arrives as a list of one
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt = Field(1, ge=1, le=1, description="one choice per request")
    user: StrictStr | None = None
    ignore_eos: StrictBool = False  # vLLM's extension; benchmark clients send it
    # Accepted at their neutral value only (see the validators below).
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Literal["none"] | None = None
    parallel_tool_calls: StrictBool | None = None  # no tools, so nothing to call in parallel
    metadata: dict[StrictStr, StrictStr] | None = None  # stored nowhere, changes nothing
    store: StrictBool | None = None
    pipeline: PipelineOptions = PipelineOptions()

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[Message], info: ValidationInfo) -> list[Message]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("messages must contain at least one user message")
        limit = (info.context or {}).get("max_input_chars")
        total = sum(len(m.content) for m in messages)
        if limit is not None and total > limit:
            raise ValueError(f"input is {total} characters; the limit is {limit}")
        return messages

    @field_validator("max_tokens", "max_completion_tokens")
    @classmethod
    def _below_model_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        limit = (info.context or {}).get("max_model_len")
        if value is not None and limit is not None and value >= limit:
            raise ValueError(f"{value} tokens must be below the model limit {limit}")
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_is_a_list(cls, stop: Any) -> Any:
        if stop is not None and not isinstance(stop, str | list):
            raise ValueError(f"stop must be a string or a list of up to {MAX_STOP} strings")
        return [stop] if isinstance(stop, str) else stop

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stops: list[str] | None) -> list[str] | None:
        if stops is not None and len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences, got {len(stops)}")
        if stops is not None and not all(stops):
            raise ValueError("a stop sequence must not be empty")
        return stops or None

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise _not_permitted("logprobs: true", "the pipeline returns no log probabilities")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _no_top_logprobs(cls, value: int | None) -> int | None:
        if value:
            raise _not_permitted("top_logprobs", "the pipeline returns no log probabilities")
        return value

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise _not_permitted("tools", "the pipeline answers from passages; it calls no tools")
        return value

    @field_validator("store")
    @classmethod
    def _no_store(cls, value: bool | None) -> bool | None:
        if value:
            raise _not_permitted("store: true", "completions are not stored")
        return value

    @property
    def requested_tokens(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens

    @property
    def query(self) -> str:
        """The question to retrieve for: the last user turn."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")


def error_param(loc: tuple[int | str, ...]) -> str | None:
    """The field a validation error is about, as the client wrote it (`messages.0.content.1.type`),
    without the tags pydantic adds for a union's branch."""
    parts = [str(p) for i, p in enumerate(loc)
             if not (p in _CONTENT_TAGS and i and loc[i - 1] == "content")]
    return ".".join(parts) or None

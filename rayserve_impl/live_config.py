"""The `user_config` every deployment takes: settings that change in place, without a restart.

Serve hands `user_config` to `reconfigure()` at replica start and on every change, and changing
it restarts nothing (unlike `ray_actor_options`, code or builder args). Only settings a running
stage can pick up cheaply belong here: the prompt template, the route rule's thresholds, the
answer length, the revision name. The same mapping is set on every deployment (a YAML anchor in
the Serve config), so every stage, and the revision each response reports, moves together.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared_pipeline.config import Settings


class LiveConfig(BaseModel):
    """Settings a `serve deploy` can change in place; unset fields keep the deployed value."""

    model_config = ConfigDict(extra="forbid")

    revision_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    prompt_template: str | None = Field(None, description="must contain {passages}")
    min_evidence_score: float | None = Field(None, description="route: below this -> large")
    long_query_words: int | None = Field(None, gt=0, description="route: at least this -> large")
    default_max_tokens: int | None = Field(None, gt=0)
    max_answer_chars: int | None = Field(None, gt=0)

    def apply(self, settings: Settings) -> Settings:
        """`settings` with these overrides; the result is validated like any `Settings`."""
        data = settings.model_dump()
        sections = {"prompt_template": "generate", "default_max_tokens": "generate",
                    "min_evidence_score": "route", "long_query_words": "route",
                    "max_answer_chars": "postprocess"}
        for field, value in self.model_dump(exclude_none=True).items():
            if field in sections:
                data[sections[field]][field] = value
            else:
                data[field] = value
        if "{passages}" not in data["generate"]["prompt_template"]:
            raise ValueError("prompt_template must contain {passages}")
        return Settings.model_validate(data)


def apply_user_config(settings: Settings, user_config: dict[str, Any] | None) -> Settings:
    """Validate a deployment's `user_config` and apply it to the settings it was built with."""
    return LiveConfig.model_validate(user_config or {}).apply(settings)

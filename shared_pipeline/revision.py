"""Revisions: a name for what a rollback restores (code, model artifact, prompt, stage config).

`revision_of(settings)` = `<revision_name>-<hash>`; the hash covers the package version, the
generator checkpoint's key and every setting that changes behaviour, so two servers that answer
differently never report the same revision.

`RevisionChange` is a new revision described as a change to a running one: the settings a
rollout may touch without new code. Ray applies it in place as a deployment's `user_config`;
the KServe stack starts the InferenceServices it touches (`stages()`) again with the changed
settings, as a new revision of each, and splits traffic to them.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel, ConfigDict, Field

from shared_pipeline.assets import KEY_FILE
from shared_pipeline.config import Settings


def package_version() -> str:
    try:
        return version("twinserve")
    except PackageNotFoundError:
        return "dev"


def revision_of(settings: Settings) -> str:
    behaviour = settings.model_dump(mode="json", exclude={"cache_dir", "revision_name"})
    key_file = settings.model_dir / KEY_FILE
    model = key_file.read_text() if key_file.exists() else str(settings.model_dir)
    blob = json.dumps({"code": package_version(), "model": model, "settings": behaviour},
                      sort_keys=True)
    return f"{settings.revision_name}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


# RevisionChange field -> (settings section, the stage that reads it).
_FIELDS: dict[str, tuple[str, str]] = {
    "prompt_template": ("generate", "generate"),
    "default_max_tokens": ("generate", "generate"),
    "delay_ms": ("generate", "generate"),
    "min_evidence_score": ("route", "route"),
    "long_query_words": ("route", "route"),
    "max_answer_chars": ("postprocess", "postprocess"),
    "fail_ratio": ("postprocess", "postprocess"),
}


class RevisionChange(BaseModel):
    """Settings a rollout can change without new code; unset fields keep the running value."""

    model_config = ConfigDict(extra="forbid")

    revision_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    prompt_template: str | None = Field(None, description="must contain {passages}")
    default_max_tokens: int | None = Field(None, gt=0)
    delay_ms: float | None = Field(None, ge=0, description="generate: injected delay")
    min_evidence_score: float | None = Field(None, description="route: below this -> large")
    long_query_words: int | None = Field(None, gt=0, description="route: at least this -> large")
    max_answer_chars: int | None = Field(None, gt=0)
    fail_ratio: float | None = Field(None, ge=0, le=1, description="postprocess: injected 500s")

    def apply(self, settings: Settings) -> Settings:
        """`settings` with these changes; the result is validated like any `Settings`."""
        data = settings.model_dump()
        for name, value in self.model_dump(exclude_none=True).items():
            if name in _FIELDS:
                data[_FIELDS[name][0]][name] = value
            else:
                data[name] = value
        if "{passages}" not in data["generate"]["prompt_template"]:
            raise ValueError("prompt_template must contain {passages}")
        return Settings.model_validate(data)

    def stages(self) -> set[str]:
        """The stages whose behaviour this change touches (the InferenceServices KServe rolls)."""
        return {_FIELDS[name][1] for name in self.model_dump(exclude_none=True) if name in _FIELDS}

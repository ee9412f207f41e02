"""The `user_config` every deployment takes: settings that change in place, without a restart.

Serve hands `user_config` to `reconfigure()` at replica start and on every change, and changing
it restarts nothing (unlike `ray_actor_options`, code or builder args). Only settings a running
stage can pick up cheaply belong here: exactly the fields of `shared_pipeline.revision.
RevisionChange` (prompt template, route thresholds, answer length, injected faults, revision
name). The same mapping is set on every deployment (a YAML anchor in the Serve config), so every
stage, and the revision each response reports, moves together.
"""

from __future__ import annotations

from typing import Any

from shared_pipeline.config import Settings
from shared_pipeline.revision import RevisionChange


def apply_user_config(settings: Settings, user_config: dict[str, Any] | None) -> Settings:
    """Validate a deployment's `user_config` and apply it to the settings it was built with."""
    return RevisionChange.model_validate(user_config or {}).apply(settings)

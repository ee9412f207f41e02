"""A `RevisionChange` as an InferenceService sees it: `TWINSERVE_*` variables on the
`kserve-container`, and a name for the new revision.

A rollout changes the settings of a running revision, so the new revision is the same image with
environment variables that pydantic-settings reads (`TWINSERVE_POSTPROCESS__FAIL_RATIO=0.5`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel

from kserve_impl.manifests import CONTAINER_NAME
from shared_pipeline.config import Settings
from shared_pipeline.revision import RevisionChange

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # the CRD's pattern for predictor.name


def setting_env_name(name: str) -> str:
    """The environment variable pydantic-settings reads field `name` of `RevisionChange` from.

    Derived from `Settings` itself (prefix, nesting delimiter, the section that declares the
    field), so a field added to `RevisionChange` and its section needs no change here.
    """
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    if name in Settings.model_fields:
        return f"{prefix}{name}".upper()
    sections = [section for section, info in Settings.model_fields.items()
                if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
                and name in info.annotation.model_fields]
    if len(sections) != 1:
        raise ValueError(f"RevisionChange.{name}: expected in exactly one Settings section, "
                         f"found {sections or 'none'}")
    return f"{prefix}{sections[0]}{delimiter}{name}".upper()


def settings_env(change: RevisionChange) -> dict[str, str]:
    """The `TWINSERVE_*` variables that make a server run `change` (only the fields it sets)."""
    return {setting_env_name(name): value if isinstance(value, str) else json.dumps(value)
            for name, value in change.model_dump(exclude_none=True).items()}


def with_env(containers: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    """A copy of a predictor's containers with `env` set on the `kserve-container` (replacing
    variables of the same name in place, appending the others)."""
    result = copy.deepcopy(containers)
    container = next((c for c in result if c.get("name") == CONTAINER_NAME), None)
    if container is None:
        raise ValueError(f"the predictor has no {CONTAINER_NAME!r} container")
    pending = dict(env)
    merged = []
    for var in container.get("env") or []:
        if var.get("name") in pending:
            merged.append({"name": var["name"], "value": pending.pop(var["name"])})
        else:
            merged.append(var)
    container["env"] = merged + [{"name": k, "value": v} for k, v in pending.items()]
    return result


def revision_label(change: RevisionChange) -> str:
    """The new revision's name: its `revision_name`, else one derived from the change. It names
    the Standard-mode canary (`predictor.name`, a DNS label) and `<isvc>@<revision>` replicas."""
    name = change.revision_name
    if not name:
        blob = change.model_dump_json(exclude_none=True).encode()
        return "r" + hashlib.sha256(blob).hexdigest()[:8]
    name = name.rstrip("-")
    return name if _DNS_LABEL.match(name) else f"r{name}"

"""Revisions: a name for what a rollback restores (code, model artifact, prompt, stage config).

`revision_of(settings)` = `<revision_name>-<hash>`; the hash covers the package version, the
generator checkpoint's key and every setting that changes behaviour, so two servers that answer
differently never report the same revision.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version

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

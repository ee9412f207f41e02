"""Session fixtures: the settings every test reads and the prepared assets they need."""

from __future__ import annotations

import pytest
from rich.console import Console

from shared_pipeline.config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The default settings, with the model and index made (`twinserve prepare`) if missing."""
    from twinserve.prepare import prepare

    s = Settings()
    prepare(s, Console(stderr=True))
    return s

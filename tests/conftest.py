"""Session fixtures: the settings every test reads and the prepared assets they need."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from shared_pipeline.config import Settings

# vLLM's default is enforce_eager=False (torch.compile on CPU, CUDA graphs on GPU): a first start
# compiles for about a minute more (issue 16). Tests and CI start many engines and measure none,
# so they keep eager mode; set before any Settings is built, and inherited by every server a test
# starts.
os.environ.setdefault("TWINSERVE_GENERATE__VLLM__ENFORCE_EAGER", "true")


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The default settings, with the model and index made (`twinserve prepare`) if missing."""
    from twinserve.prepare import prepare

    s = Settings()
    prepare(s, Console(stderr=True))
    return s

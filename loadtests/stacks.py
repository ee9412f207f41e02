"""One small launcher interface over the three things the benchmark drives.

`launch(name, settings, log_dir)` starts a stack and yields a `StackHandle`: where to send
requests, which /metrics endpoints Prometheus must scrape, whether the stack streams, and how
long its metrics lag behind. Each stack's own module does the real work
(`kserve_impl.local`, `rayserve_impl.local`, `loadtests.inprocess_stack`); this file only
adapts their slightly different yields, so the harness treats every stack alike.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared_pipeline.config import Settings

STACKS = ("kserve", "rayserve", "inprocess", "kserve-orchestrated")
SERVED_STACKS = ("kserve", "kserve-orchestrated", "rayserve")  # what a comparison compares
# A stack launched by name that is another stack's topology: it runs that stack's engine and
# reports under its own name (`kserve-orchestrated` is KServe with an entry service that streams).
BASE_STACK = {"kserve-orchestrated": "kserve"}


@dataclass
class StackHandle:
    name: str
    url: str  # OpenAI base URL without /v1
    metrics_urls: list[str]  # every /metrics endpoint of the stack
    streams: bool  # can the client stream tokens through this stack?
    engine: str  # the generation engine this stack was asked to run
    settle_s: float  # after the load: wait this long for the last samples to be exported
    startup_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    native: Any = None  # what the stack's own `running_stack` yielded (experiments drive it)


def engine_for(stack: str, settings: Settings, engine_parity: bool) -> str:
    """The engine a stack should run: its own by default; the settings' engine under parity."""
    if engine_parity:
        return settings.generate.engine_for("inprocess")
    return settings.generate.engine_for(BASE_STACK.get(stack, stack))


def with_engine(settings: Settings, engine: str) -> Settings:
    return settings.model_copy(
        update={"generate": settings.generate.model_copy(update={"engine": engine})})


_VLLM_METRIC = re.compile(r"^(ray_)?vllm[:_]", re.MULTILINE)


def detect_engine(metrics_texts: list[str]) -> str | None:
    """'vllm' when any endpoint exposes vLLM's own metrics (`vllm:*`, or `ray_vllm_*` through
    Ray), else 'transformers' when the pipeline metrics are there; None if nothing answered."""
    if not metrics_texts:
        return None
    if any(_VLLM_METRIC.search(text) for text in metrics_texts):
        return "vllm"
    if any("pipeline_" in text for text in metrics_texts):
        return "transformers"
    return None


def scrape_texts(urls: list[str]) -> list[str]:
    texts = []
    for url in urls:
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(url, timeout=5)
            if r.status_code == 200:
                texts.append(r.text)
    return texts


@contextlib.contextmanager
def launch(name: str, settings: Settings, log_dir: Path, *,
           engine_parity: bool = False, supervise: bool = False) -> Iterator[StackHandle]:
    """Start stack `name` with `settings`; yield its handle; stop it when the block ends.

    `supervise`: KServe's model servers are restarted when they die (as pods are); Ray Serve's
    controller always replaces dead replicas.
    """
    if name not in STACKS:
        raise KeyError(f"unknown stack {name!r}; known: {', '.join(STACKS)}")
    engine = engine_for(name, settings, engine_parity)
    settings = with_engine(settings, engine)
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if name == "inprocess":
        from loadtests.inprocess_stack import running_stack

        with running_stack(settings, engine=engine, log_path=log_dir / "inprocess.log") as s:
            yield StackHandle(name, s.url, [s.metrics_url], streams=True, engine=engine,
                              settle_s=0.0, startup_s=time.perf_counter() - started,
                              native=s)
    elif name in ("kserve", "kserve-orchestrated"):
        from kserve_impl.local import running_stack

        orchestrated = name == "kserve-orchestrated"
        with running_stack(settings, log_dir=log_dir, supervise=supervise,
                           topology="orchestrated" if orchestrated else "graph") as url:
            servers = getattr(url, "servers", {}) or {}
            metrics_urls = [f"{u.rstrip('/')}/metrics" for u in servers.values()]
            if orchestrated:  # the entry counts refusals and disconnects it answers itself
                metrics_urls.append(f"{str(url).rstrip('/')}/metrics")
            notes = [] if orchestrated else [
                "KServe's InferenceGraph router buffers every step's answer, so the client "
                "sends stream=false: e2e is measured, TTFT/TPOT are not measurable on the "
                "client for this stack."]
            yield StackHandle(name, str(url), metrics_urls, streams=orchestrated, engine=engine,
                              settle_s=0.0, startup_s=time.perf_counter() - started,
                              native=url, notes=notes)
    else:
        from rayserve_impl.local import running_stack

        with running_stack(settings) as s:
            # Ray's workers export custom metrics to the node's agent every
            # metrics_report_interval_ms (10 s by default): its /metrics lags the work by up to
            # that much, so windows are read 20 s late (Ray's own settings are left alone).
            yield StackHandle(name, s.url, [s.metrics_url], streams=True, engine=engine,
                              settle_s=20.0, startup_s=time.perf_counter() - started, native=s)

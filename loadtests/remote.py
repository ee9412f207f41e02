"""The benchmark pointed at a deployment: `twinserve bench --url URL`, `compare --url
kserve=URL --url rayserve=URL`.

A `RemoteTarget` is an endpoint someone else started (a cluster's ingress, `twinserve up` on
another shell); `attach` yields the same `StackHandle` a launcher does, so the harness runs the
identical scenario, but starts and stops nothing. Server-side figures come from, in order:
a Prometheus the user names (`--prometheus-url`, e.g. the cluster's, which scrapes every pod
through the shipped PodMonitors); the stacks' own `/metrics` when given (`--metrics-url`,
scraped by the local Prometheus or the fallback scraper); else none, and the report says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from loadtests.metrics_store import MetricsStore, metrics_store
from loadtests.prometheus import PrometheusServer
from loadtests.serverside import HistogramDelta, Key, PromQLSource

NO_SERVER_SIDE = "server-side figures: none (no Prometheus given)"
# The shipped PodMonitors scrape every 15 s: windows on a cluster's Prometheus are read this late.
CLUSTER_SCRAPE_INTERVAL_S = 15.0


@dataclass(frozen=True)
class RemoteTarget:
    """A running endpoint. `name` is the report's row and the `stack` label its `pipeline_*`
    metrics carry (kserve, rayserve, inprocess); `engine` is what the user says it runs."""

    name: str
    url: str  # OpenAI base URL, without /v1
    metrics_urls: tuple[str, ...] = ()
    engine: str = "unknown"
    streams: bool | None = None  # None: all but KServe's graph stream

    @property
    def can_stream(self) -> bool:
        return self.name != "kserve" if self.streams is None else self.streams


def parse_targets(values: list[str], default_name: str | None = None) -> dict[str, RemoteTarget]:
    """`--url` values, `NAME=URL` or a bare URL (named `default_name`); duplicates refused."""
    targets: dict[str, RemoteTarget] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or "://" in name:
            name, url = default_name, value
        if not name:
            raise ValueError(f"--url {value!r}: name the stack, as NAME=URL "
                             "(kserve=http://..., rayserve=http://...)")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--url {value!r}: the URL must start with http:// or https://")
        if name in targets:
            raise ValueError(f"--url: stack {name!r} given twice")
        targets[name] = RemoteTarget(name, url.rstrip("/").removesuffix("/v1"))
    return targets


def served_engine(models: dict) -> str:
    """The engine `/v1/models` says the tiers run (`small: x, large: y` when they differ);
    'unknown' when the card does not say."""
    try:
        tiers = next(c for c in models["data"] if c.get("id") == "pipeline")["pipeline"]["tiers"]
        engines = {tier: spec["engine"] for tier, spec in tiers.items()}
    except (KeyError, StopIteration, TypeError, AttributeError):
        return "unknown"
    if len(set(engines.values())) == 1:
        return next(iter(engines.values()))
    return ", ".join(f"{tier}: {engine}" for tier, engine in engines.items()) or "unknown"


@contextlib.contextmanager
def attach(target: RemoteTarget, *, settle_s: float = 0.0) -> Iterator:
    """The handle of a running endpoint; refuses one that does not answer `/v1/models`."""
    from loadtests.stacks import StackHandle

    try:
        r = httpx.get(f"{target.url}/v1/models", timeout=30)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{target.name}: {target.url} does not answer: "
                           f"{type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        raise RuntimeError(f"{target.name}: GET {target.url}/v1/models answered "
                           f"{r.status_code}: {r.text[:200]}")
    engine = target.engine if target.engine != "unknown" else served_engine(r.json())
    notes = [f"remote endpoint {target.url}, started elsewhere: nothing was started or "
             "stopped, startup time is not measured"]
    if not target.can_stream:
        notes.append("KServe's InferenceGraph router buffers every step's answer, so the client "
                     "sends stream=false: TTFT/TPOT are not measurable on the client.")
    yield StackHandle(target.name, target.url, list(target.metrics_urls),
                      streams=target.can_stream, engine=engine, settle_s=settle_s,
                      notes=notes)


# ---------------------------------------------------------------- where figures come from
class ExternalPrometheus:
    """A Prometheus someone else runs: only its query API is used."""

    query_raw = PrometheusServer.query_raw
    query_range_raw = PrometheusServer.query_range_raw

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")


class NoServerSide:
    """No Prometheus and no /metrics: every server-side figure is empty."""

    kind = "none"

    def counter_increase(self, *args, **kwargs) -> dict[Key, float]:
        return {}

    def histogram(self, *args, **kwargs) -> dict[Key, HistogramDelta]:
        return {}

    def gauge_range(self, *args, **kwargs) -> dict[Key, list[tuple[float, float]]]:
        return {}


@dataclass
class GivenStore(MetricsStore):
    """A store whose targets the user's side scrapes already (or nobody does): its jobs are
    named by the user's scrape config, so queries select on `stack` alone."""

    targets: dict[str, list[str]] = field(default_factory=dict)
    names_jobs: bool = False

    def add_stack(self, stack: str, metrics_urls: list[str]) -> bool:
        self.targets[stack] = metrics_urls
        return True


@contextlib.contextmanager
def remote_store(targets: dict[str, RemoteTarget], prometheus_url: str | None, work_dir: Path,
                 scrape_interval_s: float, console: Console) -> Iterator[MetricsStore]:
    """The metrics store for a run against `targets`, and its note for the report."""
    if prometheus_url:
        source = PromQLSource(ExternalPrometheus(prometheus_url))
        yield GivenStore(source, None, None, None, CLUSTER_SCRAPE_INTERVAL_S,
                         note=f"Prometheus at {prometheus_url} (given, not started here); "
                              f"windows read {CLUSTER_SCRAPE_INTERVAL_S:g}s late for its "
                              "scrape interval")
    elif any(t.metrics_urls for t in targets.values()):
        with metrics_store(work_dir, scrape_interval_s, console) as store:
            store.note += "; /metrics given by --metrics-url"
            yield store
    else:
        console.log(f"[yellow]{NO_SERVER_SIDE}: client-side figures only[/]")
        yield GivenStore(NoServerSide(), None, None, None, scrape_interval_s,
                         note=f"{NO_SERVER_SIDE}; client-side figures only")


def with_metrics(targets: dict[str, RemoteTarget], values: list[str],
                 default_name: str | None = None) -> dict[str, RemoteTarget]:
    """`--metrics-url` values (`NAME=URL` or a bare URL for `default_name`) added to targets."""
    from dataclasses import replace

    out = dict(targets)
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or "://" in name:
            name, url = default_name, value
        if name not in out:
            raise ValueError(f"--metrics-url {value!r}: no --url for stack {name!r}")
        out[name] = replace(out[name], metrics_urls=(*out[name].metrics_urls, url))
    return out

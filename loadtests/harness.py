"""The benchmark harness: `twinserve bench` (one stack) and `twinserve compare` (all three).

For each stack, with the identical scenario: start the stack, point the local Prometheus at its
/metrics (or, without Prometheus, scrape them ourselves and say so), warm up, run locust
headless once per phase (CSV + JSON + per-request records), ask Prometheus for the server-side
figures of each phase (per-stage latency, hop time, in-flight, generator queue depth, tokens/s,
errors), stop the stack. Then write the report. Every number in the report is also in `raw/`.

Entry points for the CLI:
    bench(settings, stack, scenario, out, console) -> dict
    compare(settings, scenario, engine_parity, out, console) -> Path
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadtests import report, results
from loadtests.locust_run import run_locust
from loadtests.prometheus import (
    PrometheusServer,
    find_prometheus,
    host_port,
    write_scrape_config,
)
from loadtests.scenarios import Scenario, get_scenario
from loadtests.scraper import FallbackScraper
from loadtests.serverside import PromQLSource, ServerSideSource
from loadtests.stacks import STACKS, StackHandle, detect_engine, launch, scrape_texts
from shared_pipeline.config import Settings
from shared_pipeline.processes import free_port
from shared_pipeline.samples import load_questions

COMPARE_ORDER = ("inprocess", "kserve", "rayserve")  # the reference first: fast to start
STAGES = ("retrieve", "rerank", "route", "generate", "postprocess")
WHOLE_SUFFIX = "-whole"  # the in-process reference's extra non-streaming phase


def default_out_dir() -> Path:
    return Path("reports") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


# ---------------------------------------------------------------- the metrics store
@dataclass
class MetricsStore:
    """Prometheus when installed, else the fallback scraper; targets grow as stacks start."""

    source: ServerSideSource
    prometheus: PrometheusServer | None
    scraper: FallbackScraper | None
    config_path: Path | None
    scrape_interval_s: float
    targets: dict[str, list[str]] = field(default_factory=dict)  # job -> metrics URLs
    note: str = ""

    def add_stack(self, stack: str, metrics_urls: list[str]) -> bool:
        """Scrape `stack`'s endpoints from now on; True once the first scrape succeeded."""
        self.targets[stack] = metrics_urls
        if self.prometheus is not None:
            write_scrape_config(self.config_path,
                                {job: [host_port(u) for u in urls]
                                 for job, urls in self.targets.items()},
                                self.scrape_interval_s)
            self.prometheus.reload()
            return self.prometheus.wait_scraped(stack)
        self.scraper.set_targets(stack, metrics_urls)
        return True


@contextmanager
def metrics_store(work_dir: Path, scrape_interval_s: float,
                  console: Console) -> Iterator[MetricsStore]:
    binary = find_prometheus()
    if binary:
        config = work_dir / "prometheus.yml"
        write_scrape_config(config, {}, scrape_interval_s)
        server = PrometheusServer(binary, config, work_dir / "tsdb", free_port(),
                                  work_dir / "prometheus.log")
        server.start()
        console.log(f"Prometheus {server.version} on {server.url} (config {config})")
        store = MetricsStore(PromQLSource(server), server, None, config, scrape_interval_s,
                             note=f"Prometheus {server.version}, scrape interval "
                                  f"{scrape_interval_s:g}s, config {config.name} rendered "
                                  "from manifests/monitoring/prometheus-local.yml")
        try:
            yield store
        finally:
            server.stop()
    else:
        console.log("[yellow]prometheus is not installed (`make prometheus`): scraping "
                    "/metrics directly with the fallback scraper[/]")
        scraper = FallbackScraper(scrape_interval_s)
        scraper.start()
        store = MetricsStore(scraper, None, scraper, None, scrape_interval_s,
                             note="Prometheus not installed: the harness scraped /metrics "
                                  f"itself every {scrape_interval_s:g}s (fallback scraper)")
        try:
            yield store
        finally:
            scraper.stop()


# ---------------------------------------------------------------- one stack
def warm_up(handle: StackHandle, scenario: Scenario, console: Console) -> list[dict[str, Any]]:
    """Sequential requests before measuring: first-call costs (lazy imports, graph compile,
    allocator growth) are paid here, not in the first phase. Both tiers are exercised."""
    questions = [q.question for q in load_questions()]
    answers = []
    for i in range(scenario.warmup_requests):
        body = {"model": "pipeline", "stream": False, "max_tokens": scenario.max_tokens,
                "ignore_eos": scenario.ignore_eos,
                "messages": [{"role": "user", "content": questions[i % len(questions)]}],
                "pipeline": {"tier": ("small", "large")[i % 2]}}
        started = time.perf_counter()
        r = httpx.post(f"{handle.url}/v1/chat/completions", json=body, timeout=300)
        answers.append({"status": r.status_code, "seconds": time.perf_counter() - started,
                        "body": r.json() if r.headers.get("content-type", "").startswith(
                            "application/json") else r.text[:500]})
        if r.status_code != 200:
            console.log(f"[yellow]{handle.name}: warm-up request {i} answered "
                        f"{r.status_code}: {r.text[:200]}[/]")
    return answers


def whole_reference_phase(scenario: Scenario):
    """The first concurrency phase again, answered whole (`stream: false`), for the in-process
    reference only: KServe cannot stream, so its serving overhead is measured against the
    reference answering the same way (per-token SSE work is not free on a 2-core machine)."""
    first = next((p for p in scenario.phases if p.kind == "concurrency"), None)
    return first.model_copy(update={"name": f"{first.name}{WHOLE_SUFFIX}"}) if first else None


def server_side(source: ServerSideSource, stack: str, windows: list[dict[str, Any]],
                run_start: float, run_end: float, step_s: float) -> dict[str, Any]:
    """The Prometheus figures of one stack: whole run, per phase, and time series."""
    def hist_summary(name: str, by: tuple[str, ...], start: float, end: float):
        out = {}
        for key, h in source.histogram(name, stack, by, start, end).items():
            out["/".join(key) or "all"] = {"count": h.count, "mean_s": h.mean,
                                           "p50_s": h.quantile(0.5), "p95_s": h.quantile(0.95),
                                           "p99_s": h.quantile(0.99)}
        return out

    def counters(name: str, by: tuple[str, ...], start: float, end: float):
        return {"/".join(k) or "all": v
                for k, v in source.counter_increase(name, stack, by, start, end).items()}

    def gauge_max(name: str, by: tuple[str, ...], start: float, end: float):
        series = source.gauge_range(name, stack, by, start, end, step_s)
        return {"/".join(k): max((v for _, v in pts), default=0.0) for k, pts in series.items()}

    phases = {}
    for w in windows:
        start, end = w["server_start"], w["server_end"]
        duration = max(end - start, 1e-9)
        tokens = counters("pipeline_generated_tokens_total", (), start, end)
        phases[w["phase"]] = {
            "window": [start, end],
            "stage_seconds": hist_summary("pipeline_stage_seconds", ("stage",), start, end),
            "hop_seconds": hist_summary("pipeline_hop_seconds", ("stage",), start, end),
            "request_seconds": hist_summary("pipeline_request_seconds", (), start, end),
            "requests_by_status": counters("pipeline_requests_total", ("status",), start, end),
            "generated_tokens_per_s": tokens.get("all", 0.0) / duration,
            "max_queue_depth": gauge_max("pipeline_generation_queue_depth", ("tier",),
                                         start, end),
            "max_inflight": gauge_max("pipeline_stage_inflight", ("stage",), start, end),
        }
    return {
        "window": [run_start, run_end],
        "stage_seconds": hist_summary("pipeline_stage_seconds", ("stage",), run_start, run_end),
        "hop_seconds": hist_summary("pipeline_hop_seconds", ("stage",), run_start, run_end),
        "request_seconds": hist_summary("pipeline_request_seconds", (), run_start, run_end),
        "ttft_seconds": hist_summary("pipeline_time_to_first_token_seconds", (), run_start,
                                     run_end),
        "tpot_seconds": hist_summary("pipeline_time_per_output_token_seconds", (), run_start,
                                     run_end),
        "requests_by_status": counters("pipeline_requests_total", ("status",), run_start,
                                       run_end),
        "generated_tokens": counters("pipeline_generated_tokens_total", (), run_start, run_end),
        "prompt_tokens": counters("pipeline_prompt_tokens_total", (), run_start, run_end),
        "phases": phases,
        "series": {
            "queue_depth": {"/".join(k): v for k, v in source.gauge_range(
                "pipeline_generation_queue_depth", stack, ("tier",), run_start, run_end,
                step_s).items()},
            "inflight": {"/".join(k): v for k, v in source.gauge_range(
                "pipeline_stage_inflight", stack, ("stage",), run_start, run_end,
                step_s).items()},
        },
    }


def bench_stack(settings: Settings, stack: str, scenario: Scenario, raw_root: Path,
                store: MetricsStore, console: Console, progress: Progress, task_id,
                engine_parity: bool = False) -> dict[str, Any]:
    """Everything for one stack, with the stack up only as long as needed."""
    raw_dir = raw_root / stack
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "records.jsonl").unlink(missing_ok=True)
    progress.update(task_id, description=f"{stack}: starting")
    with launch(stack, settings, raw_dir / "logs", engine_parity=engine_parity) as handle:
        console.log(f"{stack}: up in {handle.startup_s:.0f}s at {handle.url}; metrics "
                    f"{', '.join(handle.metrics_urls)}")
        scraped = store.add_stack(stack, handle.metrics_urls)
        if not scraped:
            console.log(f"[yellow]{stack}: Prometheus has not scraped every target yet[/]")
        progress.update(task_id, description=f"{stack}: warming up")
        warm = warm_up(handle, scenario, console)
        time.sleep(handle.settle_s + 2 * store.scrape_interval_s)  # baseline after warm-up
        lag = handle.settle_s + store.scrape_interval_s
        windows = []
        run_start = time.time()
        plan = [(phase, None) for phase in scenario.phases]
        if stack == "inprocess" and (whole := whole_reference_phase(scenario)) is not None:
            plan.append((whole, False))
        for phase, stream in plan:
            progress.update(task_id, description=f"{stack}: {phase.name}")
            phase_started = time.time()

            def tick(phase_started=phase_started, duration=phase.duration_s) -> None:
                progress.update(task_id, completed=progress.base
                                + min(time.time() - phase_started, duration))

            w = run_locust(handle, phase, scenario, raw_dir, on_tick=tick, stream=stream)
            progress.base += phase.duration_s if stream is None else 0.0
            w["server_start"] = w["started"] + lag
            w["server_end"] = w["finished"] + lag
            windows.append(w)
            if w["exit_code"] not in (0, None):
                console.log(f"[yellow]{stack}: locust exited {w['exit_code']} in "
                            f"{phase.name} (see raw/{stack}/locust_{phase.name}.log)[/]")
        run_end = time.time()
        progress.update(task_id, description=f"{stack}: collecting metrics")
        time.sleep(lag + store.scrape_interval_s)
        # Read after the run and the export lag: Ray exports a replica's metrics (vLLM's among
        # them) every ~10 s, so right after warm-up they may not be on its endpoint yet.
        detected = detect_engine(scrape_texts(handle.metrics_urls))
        server = server_side(store.source, stack, windows, run_start + lag, run_end + lag,
                             store.scrape_interval_s)
        progress.update(task_id, description=f"{stack}: stopping")
    records = results.load_records(raw_dir / "records.jsonl")
    phases = [results.phase_stats(records, phase, w["started"], w["load_ended"])
              for (phase, _), w in zip(plan, windows, strict=True)]
    result = {
        "stack": stack, "url": handle.url, "streams": handle.streams,
        "engine": handle.engine, "engine_detected": detected, "startup_s": handle.startup_s,
        "notes": handle.notes, "metrics_urls": handle.metrics_urls,
        "revision": next((r.get("revision") for r in records if r.get("revision")), None),
        "warmup": warm, "windows": windows, "phases": phases,
        "overall": results.overall(phases), "server": server,
    }
    (raw_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    console.log(f"{stack}: {result['overall']['ok']} ok, {result['overall']['failed']} failed; "
                f"raw numbers in {raw_dir}")
    return result


# ---------------------------------------------------------------- entry points
def _run(settings: Settings, stacks: tuple[str, ...], scenario: Scenario, out: Path,
         console: Console, engine_parity: bool,
         before_stop: Callable[[MetricsStore, dict[str, Any]], None] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "scenario.json").write_text(scenario.model_dump_json(indent=2))
    (raw / "settings.json").write_text(settings.model_dump_json(indent=2))
    started = time.time()
    per_stack: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="twinserve-prom-") as tmp, \
            metrics_store(Path(tmp), scenario.scrape_interval_s, console) as store:
        total = scenario.load_seconds * len(stacks)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.percentage:>3.0f}% of load"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task_id = progress.add_task(f"{scenario.name}", total=total)
            progress.base = 0.0  # load seconds of the phases already run
            for i, stack in enumerate(stacks):
                try:
                    per_stack[stack] = bench_stack(settings, stack, scenario, raw, store,
                                                   console, progress, task_id, engine_parity)
                except Exception as exc:
                    console.log(f"[red]{stack} failed: {type(exc).__name__}: {exc}[/]")
                    errors[stack] = f"{type(exc).__name__}: {exc}"
                    progress.base = (i + 1) * scenario.load_seconds
            progress.update(task_id, description=f"{scenario.name}: done")
        if store.prometheus is not None:
            (raw / "promql.json").write_text(json.dumps(store.source.queries, default=str))
            (raw / "prometheus.yml").write_text(store.config_path.read_text())
        context = {"started": started, "ended": time.time(), "stacks": list(per_stack)}
        if before_stop is not None:
            before_stop(store, context)
        store_note = store.note
    env = report.environment(settings, per_stack, store_note)
    path = report.write_report(out, scenario, per_stack, env, errors,
                               engine_parity=engine_parity)
    console.print(f"[bold green]report:[/] {path / 'index.html'}  ({path / 'report.md'})")
    return path


def bench(settings: Settings, stack: str, scenario: str, out: Path,
          console: Console) -> dict:
    """`twinserve bench --stack S --scenario NAME --out DIR`: one stack, report in `out`.

    Returns the stack's result (the same dict as `raw/<stack>/result.json`).
    """
    if stack not in STACKS:
        raise KeyError(f"unknown stack {stack!r}; known: {', '.join(STACKS)}")
    out = out or default_out_dir()
    _run(settings, (stack,), get_scenario(scenario), out, console, engine_parity=False)
    result_path = out / "raw" / stack / "result.json"
    if not result_path.exists():
        raise RuntimeError(f"{stack} produced no result; see {out / 'report.md'}")
    return json.loads(result_path.read_text())


def compare(settings: Settings, scenario: str | None, engine_parity: bool, out: Path | None,
            console: Console,
            before_stop: Callable[[MetricsStore, dict[str, Any]], None] | None = None) -> Path:
    """`twinserve compare [--scenario NAME] [--engine-parity] --out DIR`: in-process reference,
    KServe and Ray Serve under the identical scenario; returns the report directory.

    `before_stop` (tests) is called with the metrics store while Prometheus still runs.
    """
    return _run(settings, COMPARE_ORDER, get_scenario(scenario), out or default_out_dir(),
                console, engine_parity, before_stop)

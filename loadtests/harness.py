"""The benchmark harness: `twinserve bench` (one stack) and `twinserve compare` (all three).

For each stack, with the identical scenario: start the stack, point the local Prometheus at its
/metrics (or, without Prometheus, scrape them ourselves and say so), warm up, run locust
headless once per phase (CSV + JSON + per-request records), ask Prometheus for the server-side
figures of each phase (per-stage latency, hop time, in-flight, generator queue depth, tokens/s,
errors), stop the stack. Then write the report. Every number in the report is also in `raw/`.
The pieces live beside it: metrics_store.py (Prometheus or the fallback scraper),
serverside.py (the server-side figures), report.py (the documents).

Entry points for the CLI:
    bench(settings, stack, scenario, out, console) -> dict
    compare(settings, scenario, engine_parity, out, console) -> Path
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadtests import host, report, results
from loadtests.emulation import emulated_parts
from loadtests.locust_run import run_locust
from loadtests.metrics_store import MetricsStore, metrics_store
from loadtests.remote import RemoteTarget, attach, remote_store
from loadtests.scenario_file import resolve_scenario
from loadtests.scenarios import Scenario, whole_reference_phase
from loadtests.serverside import server_figures
from loadtests.stacks import STACKS, StackHandle, detect_engine, launch, scrape_texts
from shared_pipeline.config import Settings
from shared_pipeline.samples import load_questions

COMPARE_ORDER = ("inprocess", "kserve", "rayserve")  # the reference first: fast to start


def default_out_dir() -> Path:
    return Path("reports") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


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




def bench_stack(settings: Settings, stack: str, scenario: Scenario, raw_root: Path,
                store: MetricsStore, console: Console, progress: Progress, task_id,
                engine_parity: bool = False, remote: RemoteTarget | None = None
                ) -> dict[str, Any]:
    """Everything for one stack, with the stack up only as long as needed (`remote`: a
    running endpoint, attached to instead of started)."""
    raw_dir = raw_root / stack
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "records.jsonl").unlink(missing_ok=True)
    progress.update(task_id, description=f"{stack}: starting")
    running = attach(remote, settle_s=20.0 * (stack == "rayserve")) if remote else launch(
        stack, settings, raw_dir / "logs", engine_parity=engine_parity)
    with running as handle:
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
        server = server_figures(store.source, stack, windows, run_start + lag, run_end + lag,
                             store.scrape_interval_s)
        progress.update(task_id, description=f"{stack}: stopping")
    records = results.load_records(raw_dir / "records.jsonl")
    phases = [results.phase_stats(records, phase, w["started"], w["load_ended"])
              for (phase, _), w in zip(plan, windows, strict=True)]
    result = {
        "stack": stack, "url": handle.url, "streams": handle.streams,
        "engine": handle.engine, "engine_detected": detected, "startup_s": handle.startup_s,
        "notes": handle.notes, "metrics_urls": handle.metrics_urls,
        "emulated": emulated_parts(stack, remote is not None),
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
         before_stop: Callable[[MetricsStore, dict[str, Any]], None] | None = None,
         remotes: dict[str, RemoteTarget] | None = None,
         prometheus_url: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "scenario.json").write_text(scenario.model_dump_json(indent=2))
    (raw / "settings.json").write_text(settings.model_dump_json(indent=2))
    started = time.time()
    per_stack: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="twinserve-prom-") as tmp, \
            (remote_store(remotes, prometheus_url, Path(tmp), scenario.scrape_interval_s,
                          console) if remotes else
             metrics_store(Path(tmp), scenario.scrape_interval_s, console)) as store:
        total = scenario.load_seconds * len(stacks)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.percentage:>3.0f}% of load"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task_id = progress.add_task(f"{scenario.name}", total=total)
            progress.base = 0.0  # load seconds of the phases already run
            for i, stack in enumerate(stacks):
                try:
                    per_stack[stack] = bench_stack(settings, stack, scenario, raw, store,
                                                   console, progress, task_id, engine_parity,
                                                   (remotes or {}).get(stack))
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
    env = host.environment(settings, per_stack, store_note)
    path = report.write_report(out, scenario, per_stack, env, errors,
                               engine_parity=engine_parity)
    console.print(f"[bold green]report:[/] {path / 'index.html'}  ({path / 'report.md'})")
    return path


def bench(settings: Settings, stack: str, scenario: str | Scenario, out: Path,
          console: Console, remote: RemoteTarget | None = None,
          prometheus_url: str | None = None) -> dict:
    """`twinserve bench --stack S --scenario NAME|PATH --out DIR`: one stack, report in `out`;
    with `remote` (`--url`), against that running endpoint, named `stack`.

    Returns the stack's result (the same dict as `raw/<stack>/result.json`).
    """
    if remote is None and stack not in STACKS:
        raise KeyError(f"unknown stack {stack!r}; known: {', '.join(STACKS)}")
    out = out or default_out_dir()
    _run(settings, (stack,), resolve_scenario(scenario), out, console, engine_parity=False,
         remotes={stack: remote} if remote else None, prometheus_url=prometheus_url)
    result_path = out / "raw" / stack / "result.json"
    if not result_path.exists():
        raise RuntimeError(f"{stack} produced no result; see {out / 'report.md'}")
    return json.loads(result_path.read_text())


def compare(settings: Settings, scenario: str | Scenario | None, engine_parity: bool,
            out: Path | None, console: Console,
            before_stop: Callable[[MetricsStore, dict[str, Any]], None] | None = None,
            remotes: dict[str, RemoteTarget] | None = None,
            prometheus_url: str | None = None) -> Path:
    """`twinserve compare [--scenario NAME|PATH] [--engine-parity] --out DIR`: in-process
    reference, KServe and Ray Serve under the identical scenario; returns the report directory.
    With `remotes` (`--url kserve=URL --url rayserve=URL`): those running endpoints only.

    `before_stop` (tests) is called with the metrics store while Prometheus still runs.
    """
    stacks = tuple(remotes) if remotes else COMPARE_ORDER
    return _run(settings, stacks, resolve_scenario(scenario), out or default_out_dir(),
                console, engine_parity, before_stop, remotes, prometheus_url)

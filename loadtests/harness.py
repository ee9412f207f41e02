"""The benchmark harness: `twinserve bench` (one stack) and `twinserve compare` (a scenario's).

For each stack, with the identical scenario: start the stack, point the local Prometheus at its
/metrics (or, without Prometheus, scrape them ourselves and say so), warm up, run locust
headless once per phase (CSV + JSON + per-request records), ask Prometheus for the server-side
figures of each phase (per-stage latency, hop time, in-flight, generator queue depth, tokens/s,
errors), run `vllm bench serve` once where the scenario asks (loadtests.vllm_bench), run the
experiments on a served stack if asked (`after_load`, with the stack still up: `compare
--experiment` needs no second start), stop the stack. Then write the report. Every number in
the report is also in `raw/`.
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

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadtests import engine_alone, host, references, report, results, vllm_bench, warmup
from loadtests.emulation import emulated_parts
from loadtests.join import join_stack
from loadtests.locust_run import run_locust
from loadtests.metrics_store import MetricsStore, metrics_store
from loadtests.remote import RemoteTarget, attach, remote_store
from loadtests.scenario_file import resolve_scenario
from loadtests.scenarios import Scenario, whole_reference_phase
from loadtests.serverside import QUEUE_SAMPLE_PERIOD_S, server_figures
from loadtests.stacks import SERVED_STACKS, STACKS, StackHandle, detect_engine, scrape_texts
from shared_pipeline.config import Settings

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PROMPTS_ENV = "TWINSERVE_PROMPTS_FILE"  # the locustfile's raw-prompt list (engine alone)
AfterLoad = Callable[[StackHandle], None]  # run on a served stack after its measurements


def default_out_dir() -> Path:
    return Path("reports") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


# ---------------------------------------------------------------- one stack


def _phase_plan(stack: str, scenario: Scenario, whole_for: set[str]) -> list[tuple[Any, Any]]:
    """(phase, stream) in order; a reference whose engine a non-streaming stack runs also
    answers the first phase whole, for that stack's like-for-like overhead."""
    plan = [(phase, None) for phase in scenario.phases]
    if stack in whole_for and (whole := whole_reference_phase(scenario)) is not None:
        plan.append((whole, False))
    return plan


def bench_stack(settings: Settings, stack: str, scenario: Scenario, raw_root: Path,
                store: MetricsStore, console: Console, progress: Progress, task_id,
                engine_parity: bool = False, repeat: int = 1, whole_for: set[str] | None = None,
                prompts: list[str] | None = None, remote: RemoteTarget | None = None,
                supervise: bool = False, after_load: AfterLoad | None = None
                ) -> dict[str, Any]:
    """Everything for one stack, with the stack up only as long as needed. `repeat` runs each
    phase that many times; `prompts` (the engine alone) replaces the sample questions; `remote`
    is a running endpoint, attached to instead of started; `supervise` starts KServe as the
    experiments need it; `after_load` (the experiments) gets the handle once every figure is
    taken, and its failure is logged, not raised: the comparison result stays."""
    raw_dir = raw_root / stack
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "records.jsonl").unlink(missing_ok=True)
    extra_env: dict[str, str] = {}
    model = "pipeline"
    if prompts is not None:
        model = engine_alone.served_model(settings)
        (raw_dir / "prompts.json").write_text(json.dumps(prompts))
        extra_env = {PROMPTS_ENV: str(raw_dir / "prompts.json"), "TWINSERVE_MODEL": model}
    progress.update(task_id, description=f"{stack}: starting")
    running = (attach(remote, settle_s=20.0 * (stack == "rayserve")) if remote else
               references.running(stack, settings, raw_dir / "logs", engine_parity,
                                  supervise=supervise))
    with running as handle:
        console.log(f"{stack}: up in {handle.startup_s:.0f}s at {handle.url}; metrics "
                    f"{', '.join(handle.metrics_urls)}")
        # references scrape as the `inprocess` job (their label), kserve-orchestrated as its
        # own job (its label is KServe's); the engine alone exposes only vLLM's own metrics,
        # no pipeline_* figures to ask Prometheus for
        job = references.scrape_job(stack)
        scraped = stack == engine_alone.NAME or store.add_stack(job, handle.metrics_urls)
        if not scraped:
            console.log(f"[yellow]{stack}: Prometheus has not scraped every target yet[/]")
        progress.update(task_id, description=f"{stack}: warming up")
        warm = warmup.warm_up(handle.url, stack, handle.streams, scenario, console,
                              model=model, prompts=prompts)
        time.sleep(handle.settle_s + 2 * store.scrape_interval_s)  # baseline after warm-up
        lag = handle.settle_s + store.scrape_interval_s
        windows: list[dict[str, Any]] = []
        run_start = time.time()
        plan = _phase_plan(stack, scenario, whole_for or set())
        for phase, stream in plan:
            for i in range(repeat):
                progress.update(task_id, description=f"{stack}: {phase.name}"
                                + (f" ({i + 1}/{repeat})" if repeat > 1 else ""))
                phase_started = time.time()

                def tick(phase_started=phase_started, duration=phase.duration_s) -> None:
                    progress.update(task_id, completed=progress.base
                                    + min(time.time() - phase_started, duration))

                w = run_locust(handle, phase, scenario, raw_dir, on_tick=tick, stream=stream,
                               extra_env={**extra_env, "TWINSERVE_REPEAT": str(i)})
                progress.base += phase.duration_s if stream is None else 0.0
                w.update(phase=phase.name if i == 0 else f"{phase.name}#{i + 1}",
                         repeat=i, server_start=w["started"] + lag,
                         server_end=w["finished"] + lag)
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
        server = {} if stack == engine_alone.NAME else server_figures(
            store.source, references.metrics_label(stack), windows, run_start + lag,
            run_end + lag, store.scrape_interval_s, queue_step_s=QUEUE_SAMPLE_PERIOD_S,
            job=store.job_filter(job))
        if scenario.vllm_bench:  # vLLM's client last: outside every window read above
            progress.update(task_id, description=f"{stack}: vllm bench serve")
        client_bench = vllm_bench.beside_locust(stack, handle, scenario, settings, raw_dir,
                                                console)
        if after_load is not None:  # last: no experiment request falls in a measured window
            progress.update(task_id, description=f"{stack}: experiments")
            try:
                after_load(handle)
            except Exception as exc:  # one stack's experiments must not cost its comparison
                console.log(f"[red]{stack}: experiments failed: {type(exc).__name__}: {exc}[/]")
        progress.update(task_id, description=f"{stack}: stopping")
    records = results.load_records(raw_dir / "records.jsonl")
    phases = [results.phase_over_repeats(
        records, phase, [(w["started"], w["load_ended"]) for w in windows
                         if w["phase"].split("#")[0] == phase.name]) for phase, _ in plan]
    result = {
        "stack": stack, "url": handle.url, "streams": handle.streams,
        "engine": handle.engine, "engine_detected": detected, "startup_s": handle.startup_s,
        "notes": handle.notes, "metrics_urls": handle.metrics_urls,
        "emulated": emulated_parts(stack, remote is not None),
        "revision": next((r.get("revision") for r in records if r.get("revision")), None),
        "warmup": warm, "repeat": repeat, "windows": windows, "phases": phases,
        "overall": results.overall(phases), "server": server, "join": join_stack(records),
        "vllm_bench": client_bench,
    }
    (raw_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    console.log(f"{stack}: {result['overall']['ok']} ok, {result['overall']['failed']} failed; "
                f"raw numbers in {raw_dir}")
    return result


def after_load_for(stack: str, remote: RemoteTarget | None,
                   after_load: AfterLoad | None) -> AfterLoad | None:
    """`after_load` for a served stack started here; None for a reference, the engine alone
    or a remote endpoint (no experiments run there)."""
    return after_load if remote is None and stack in SERVED_STACKS else None


# ---------------------------------------------------------------- entry points
def _run(settings: Settings, stacks: tuple[str, ...], scenario: Scenario, out: Path,
         console: Console, engine_parity: bool,
         before_stop: Callable[[MetricsStore, dict[str, Any]], None] | None = None,
         repeat: int = 1, remotes: dict[str, RemoteTarget] | None = None,
         prometheus_url: str | None = None, supervise: bool = False,
         after_load: AfterLoad | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "scenario.json").write_text(scenario.model_dump_json(indent=2))
    (raw / "settings.json").write_text(settings.model_dump_json(indent=2))
    started = time.time()
    whole_for = references.whole_for(settings, stacks, engine_parity)
    per_stack: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="twinserve-prom-") as tmp, \
            (remote_store(remotes, prometheus_url, Path(tmp), scenario.scrape_interval_s,
                          console) if remotes else
             metrics_store(Path(tmp), scenario.scrape_interval_s, console)) as store:
        total = scenario.load_seconds * len(stacks) * repeat
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.percentage:>3.0f}% of load"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task_id = progress.add_task(f"{scenario.name}", total=total)
            progress.base = 0.0  # load seconds of the phases already run
            for i, stack in enumerate(stacks):
                try:
                    prompts = None
                    if stack == engine_alone.NAME:
                        prompts = references.engine_alone_prompts(settings, per_stack, console)
                        if prompts is None:
                            raise RuntimeError("no pipeline prompt length measured (no "
                                               "reference ran)")
                    remote = (remotes or {}).get(stack)
                    per_stack[stack] = bench_stack(
                        settings, stack, scenario, raw, store, console, progress, task_id,
                        engine_parity, repeat, whole_for, prompts, remote, supervise,
                        after_load_for(stack, remote, after_load))
                except Exception as exc:
                    console.log(f"[red]{stack} failed: {type(exc).__name__}: {exc}[/]")
                    errors[stack] = f"{type(exc).__name__}: {exc}"
                    progress.base = (i + 1) * scenario.load_seconds * repeat
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
                               engine_parity=engine_parity, settings=settings)
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
            repeat: int = 1, engine_alone_row: bool = True,
            remotes: dict[str, RemoteTarget] | None = None,
            prometheus_url: str | None = None, supervise: bool = False,
            after_load: AfterLoad | None = None) -> Path:
    """`twinserve compare [--scenario NAME|PATH] [--stacks A,B] [--engine-parity] [--repeat N]
    --out DIR`: one in-process reference per engine, vLLM's own server (the engine alone), and
    the scenario's stacks (`Scenario.stacks`: kserve, kserve-orchestrated, rayserve) under the
    identical scenario, each phase `repeat` times; returns the report dir.
    With `remotes` (`--url kserve=URL --url rayserve=URL`): those running endpoints only.

    `before_stop` (tests) is called with the metrics store while Prometheus still runs;
    `after_load` (`--experiment`) on each served stack after its measurements, before it stops,
    `supervise` starting KServe as the experiments need it (bench_stack).
    """
    scenario = resolve_scenario(scenario)
    stacks = tuple(remotes) if remotes else references.compare_stacks(
        settings, engine_parity, tuple(scenario.stacks), with_engine_alone=engine_alone_row)
    return _run(settings, stacks, scenario, out or default_out_dir(),
                console, engine_parity, before_stop, repeat=repeat, remotes=remotes,
                prometheus_url=prometheus_url, supervise=supervise, after_load=after_load)

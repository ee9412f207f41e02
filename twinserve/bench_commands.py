"""`twinserve bench` and `twinserve compare`: locust (or vLLM's client) against the stacks, one
report; `--inventory` adds the decision record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinserve.experiment_commands import print_figures
from twinserve.options import (
    BenchClient,
    BenchStack,
    ConfigOption,
    ExperimentKind,
    console,
    load_settings,
)
from twinserve.remote_options import (
    METRICS_HELP,
    PROM_HELP,
    SCENARIO_HELP,
    STACKS_HELP,
    URL_HELP,
)

if TYPE_CHECKING:
    from loadtests.stacks import StackHandle
    from shared_pipeline.config import Settings


def bench(stack: Annotated[BenchStack | None, typer.Option(help="Which stack to load.")] = None,
          scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "smoke",
          out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
          url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
          stack_name: Annotated[str | None, typer.Option(
              help="With --url: the report's name for it and the `stack` label of its "
                   "pipeline_* metrics (default: --stack).")] = None,
          prometheus_url: Annotated[str | None, typer.Option(help=PROM_HELP)] = None,
          metrics_url: Annotated[list[str] | None, typer.Option(help=METRICS_HELP)] = None,
          client: Annotated[BenchClient, typer.Option(
              help="Load generator: locust, or vLLM's `vllm bench serve`.")] = BenchClient.locust,
          config: ConfigOption = None) -> None:
    """Run one locust scenario against one stack (started here, or running at --url) and write
    its report; server-side figures from Prometheus."""
    from loadtests.harness import bench as run_bench
    from loadtests.harness import default_out_dir
    from twinserve.remote_options import refuse, scenario_or_exit, targets_or_exit

    if client is BenchClient.vllm_bench:
        from loadtests.vllm_bench import bench as run_vllm_bench

        if stack is None or url:
            raise refuse(console, "--client vllm-bench starts the stack named by --stack")
        run_vllm_bench(load_settings(config), stack.value, out or default_out_dir(), console)
        return
    name = stack_name or (stack.value if stack else None)
    if name is None:
        raise refuse(console, "name the stack: --stack, or --stack-name with --url")
    if url is None and (stack_name or prometheus_url):
        raise refuse(console, "--stack-name and --prometheus-url need --url")
    remote = targets_or_exit(console, [url] if url else None, metrics_url, name).get(name)
    run_bench(load_settings(config), name, scenario_or_exit(console, scenario),
              out or default_out_dir(), console, remote=remote, prometheus_url=prometheus_url)


def compare(scenario: Annotated[str | None, typer.Option(
                help=SCENARIO_HELP + " Default: the full demo scenario.")] = None,
            stacks: Annotated[str | None, typer.Option(help=STACKS_HELP)] = None,
            engine_parity: Annotated[bool, typer.Option(
                "--engine-parity", help="Run every stack on the same engine.")] = False,
            out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
            experiment: Annotated[list[ExperimentKind] | None, typer.Option(
                help="Also run this experiment on every compared stack (repeatable); "
                     "its section joins the report.")] = None,
            repeat: Annotated[int, typer.Option(
                min=1, help="Run each phase (and each experiment) N times; the report gives "
                            "the median across repeats with the range.")] = 1,
            inventory: Annotated[Path | None, typer.Option(
                help="A route's inventory (docs/decision.md): add its decision record to the "
                     "report.", exists=True, dir_okay=False)] = None,
            url: Annotated[list[str] | None, typer.Option(help=URL_HELP)] = None,
            prometheus_url: Annotated[str | None, typer.Option(help=PROM_HELP)] = None,
            metrics_url: Annotated[list[str] | None, typer.Option(help=METRICS_HELP)] = None,
            config: ConfigOption = None) -> None:
    """One in-process reference per engine, vLLM's own server (the engine alone) and the
    scenario's stacks (--stacks) under one scenario (or the deployments at --url kserve=URL
    --url rayserve=URL); one report."""
    from loadtests.harness import compare as run_compare
    from loadtests.harness import default_out_dir
    from twinserve.remote_options import refuse, scenario_or_exit, targets_or_exit

    remotes = targets_or_exit(console, url, metrics_url)
    if remotes and experiment:
        raise refuse(console, "--experiment starts local stacks; against a deployment run "
                              "`twinserve experiment ... --cluster --url URL`")
    if prometheus_url and not remotes:
        raise refuse(console, "--prometheus-url needs --url")
    if remotes and stacks:
        raise refuse(console, "--stacks names stacks to start; with --url the NAMEs are the "
                              "stacks")
    chosen = scenario_or_exit(console, scenario, stacks)
    settings = load_settings(config)
    out = out or default_out_dir()
    plan = "smoke" if scenario == "smoke" else "demo"
    after_load = (experiments_on(settings, [k.value for k in experiment], plan, repeat,
                                 out / "experiments", engine_parity) if experiment else None)
    report_dir = run_compare(settings, chosen, engine_parity, out, console, repeat=repeat,
                             remotes=remotes or None, prometheus_url=prometheus_url,
                             supervise=bool(experiment), after_load=after_load)
    if experiment:
        from loadtests.experiment_report import add_to_report

        add_to_report(report_dir)
        console.print(f"[bold green]report with experiments:[/] {report_dir / 'index.html'}")
    if inventory:
        print_decision(report_dir, inventory)


def experiments_on(settings: Settings, kinds: list[str], plan: str, repeat: int, out: Path,
                   engine_parity: bool) -> Callable[[StackHandle], None]:
    """`--experiment`: run the experiments on each served stack while the comparison has it up,
    after its measurements (a second start cost minutes on 2 cores); results in
    `out/<kind>-<stack>/`, as `twinserve experiment` writes them. A failure is the harness's to
    log: that stack's comparison result stays, the next stack still runs its experiments."""
    from loadtests.experiment_stacks import on_running
    from loadtests.experiments import experiment as run_experiment
    from loadtests.stacks import with_engine

    def run(handle: StackHandle) -> None:
        # under --engine-parity the stack runs the shared engine: its rollouts keep it
        started_with = with_engine(settings, handle.engine) if engine_parity else settings
        for result in run_experiment(settings, kinds, handle.name, plan, out, console,
                                     repeat=repeat, running=on_running(handle, started_with)):
            print_figures(result)

    return run


def print_decision(report_dir: Path, inventory: Path) -> None:
    """Add the inventory's decision record to the report and print its one-line summary."""

    from loadtests.decision.record import add_decision_to_report

    record = add_decision_to_report(report_dir, inventory)
    data = json.loads((record.parent / "decision.json").read_text())
    verdict = data["summary"] if data["decision"] else f"no decision: {data['why_no_decision']}"
    console.print(f"[bold]decision ({inventory.name}):[/] {verdict}  ({record})",
                  highlight=False)



"""`twinserve experiment`: roll a revision out and back, kill a replica, overload a stack, each
under steady load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twinserve.options import (
    ChangeKind,
    ConfigOption,
    ExperimentKind,
    ServedStack,
    console,
    load_settings,
)
from twinserve.remote_options import CLUSTER_HELP


def print_figures(result: dict) -> None:
    table = Table(title=f"{result['stack']} · {result['experiment']} · revision A "
                        f"{result.get('revision_a')}")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    for key, value in result["figures"].items():
        if isinstance(value, float):
            value = f"{value:.2f}"
        table.add_row(key, str(value))
    console.print(table)


def experiment_cmd(
        kinds: Annotated[list[ExperimentKind], typer.Argument(
            help="rollback, kill-replica, overload: one or more, run in order on one start")],
        stack: Annotated[ServedStack, typer.Option(
            help="kserve, kserve-orchestrated or rayserve")],
        scenario: Annotated[str, typer.Option(help="Sizes: demo or smoke.")] = "demo",
        out: Annotated[Path | None, typer.Option(help="Result directory.")] = None,
        change: Annotated[ChangeKind | None, typer.Option(
            help="rollback: revision B is benign (new prompt), bad (30% of requests fail) "
                 "or slow (generator +3 s).")] = None,
        mode: Annotated[str | None, typer.Option(
            help="rollback: canary (KServe), inplace or restart (Ray).")] = None,
        percent: Annotated[int | None, typer.Option(
            help="rollback on KServe: canaryTrafficPercent of revision B.")] = None,
        target: Annotated[str | None, typer.Option(
            help="kill-replica: the InferenceService / deployment to kill.")] = None,
        repeat: Annotated[int, typer.Option(
            min=1, help="Run each experiment N times; figures are medians with the range.")
        ] = 1,
        cluster: Annotated[bool, typer.Option("--cluster", help=CLUSTER_HELP)] = False,
        context: Annotated[str | None, typer.Option(help="--cluster: kubeconfig context "
                                                         "(default: the current one).")] = None,
        namespace: Annotated[str | None, typer.Option(help="--cluster: namespace (default: "
                                                           "the context's).")] = None,
        url: Annotated[str | None, typer.Option(help="--cluster: the entry point's URL.")] = None,
        config: ConfigOption = None) -> None:
    """Act on a stack under steady load (roll out and back, kill a replica, overload it); each
    experiment writes OUT/<kind>-<stack>/: result.json, the raw records, the timeline and
    timeline.png."""
    from loadtests.experiments import PLANS
    from loadtests.experiments import experiment as run_experiment
    from loadtests.harness import default_out_dir
    from twinserve.remote_options import cluster_running, refuse

    if scenario not in PLANS:
        console.print(f"[red]unknown scenario {scenario!r}[/]; known: {', '.join(PLANS)}")
        raise typer.Exit(2)
    running = cluster_running(stack.value, url, context, namespace) if cluster else None
    if not cluster and (url or context or namespace):
        raise refuse(console, "--url, --context and --namespace need --cluster")
    out = out or default_out_dir()
    results = run_experiment(load_settings(config), [k.value for k in kinds], stack.value,
                             scenario, out, console, repeat=repeat, running=running,
                             change=change.value if change else None, mode=mode,
                             percent=percent, target=target)
    for result in results:
        print_figures(result)
    console.print(f"[bold green]results:[/] {out}/<kind>-{stack.value}/result.json "
                  "(and timeline.png beside it)")



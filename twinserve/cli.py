"""The `twinserve` command: prepare assets, ask a question, bring a stack up, run the demo."""

from __future__ import annotations

import json
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.schemas import RequestError
from twinserve.decide import decide as decide_record

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="One RAG LLM pipeline on KServe and on Ray Serve, measured the same way.")
console = Console()


class Stack(StrEnum):
    inprocess = "inprocess"
    kserve = "kserve"
    rayserve = "rayserve"


class ServedStack(StrEnum):
    kserve = "kserve"
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


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def prepare(config: ConfigOption = None,
            force: Annotated[bool, typer.Option(help="Rebuild even if current.")] = False) -> None:
    """Convert the packaged SmolLM2 GGUF and build the retrieval index (cached; idempotent)."""
    from twinserve.prepare import prepare as run_prepare

    run_prepare(load_settings(config), console, force=force)


def print_answer(result: dict, seconds: float, stack: str, streamed: bool) -> None:
    ext = result.get("pipeline") or {}
    if not streamed:
        console.print(result["choices"][0]["message"]["content"], markup=False)
    console.print()
    table = Table(title=f"{stack} · tier {ext.get('tier')} · revision {ext.get('revision')} · "
                        f"{seconds:.2f}s", show_header=True)
    table.add_column("citation")
    table.add_column("title")
    table.add_column("score", justify="right")
    for c in ext.get("citations", []):
        table.add_row(c["id"], c["title"], f"{c['score']:.3f}")
    if ext.get("cites_nothing"):
        table.add_row("-", "[yellow]the answer cites no passage[/]", "")
    console.print(table)
    console.print(f"route: {ext.get('tier_reason', '')}")
    console.print("stage ms: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                           (ext.get("timings") or {}).items()))


@app.command()
def ask(question: Annotated[str, typer.Argument(help="The question.")],
        stack: Annotated[Stack, typer.Option(help="Where to run it.")] = Stack.inprocess,
        url: Annotated[str | None, typer.Option(help="Base URL of a running stack.")] = None,
        engine: Annotated[EngineChoice | None, typer.Option(
            help="In-process engine (default: settings).")] = None,
        stream: Annotated[bool, typer.Option("--stream", help="Stream tokens.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        max_tokens: Annotated[int | None, typer.Option(help="Tokens to generate.")] = None,
        tier: Annotated[str | None, typer.Option(help="Force a tier: small|large.")] = None,
        topology: TopologyOption = Topology.graph,
        config: ConfigOption = None) -> None:
    """Ask the pipeline one question and print answer, citations, tier and stage timings."""
    from twinserve.client import ask as run_ask
    from twinserve.client import build_body

    if stack is Stack.kserve and stream and topology is Topology.graph:
        console.print("[red]the KServe InferenceGraph cannot stream[/] (its router buffers "
                      "every step): start `twinserve up kserve --topology orchestrated` and "
                      "ask with --topology orchestrated, or drop --stream")
        raise typer.Exit(2)

    settings = load_settings(config)
    body = build_body(question, max_tokens, tier, stream)
    on_token = None
    if stream and not as_json:
        def on_token(text: str) -> None:
            console.print(text, end="", markup=False, highlight=False)
    try:
        result, seconds = run_ask(stack.value, settings, body, url=url,
                                  engine=engine.value if engine else None, on_token=on_token)
    except RequestError as exc:
        console.print(f"[red]{exc.status}[/] {exc.message}")
        raise typer.Exit(2) from None
    except Exception as exc:  # an HTTP stack's refusal: show the server's words
        body_text = getattr(getattr(exc, "response", None), "text", None) or str(exc)
        console.print(f"[red]request failed:[/] {body_text}", markup=True)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        name = f"kserve-{topology.value}" if stack is Stack.kserve else stack.value
        print_answer(result, seconds, name, streamed=stream)


@app.command()
def up(stack: Annotated[ServedStack, typer.Argument(help="kserve or rayserve")],
       port: Annotated[int | None, typer.Option(help="Port for the stack's entry point.")] = None,
       topology: TopologyOption = Topology.graph,
       config: ConfigOption = None) -> None:
    """Start a stack locally, print its base URL when ready, stop everything on Ctrl-C."""
    from shared_pipeline.shutdown import graceful_signals

    settings = load_settings(config)
    with graceful_signals():  # SIGTERM / SIGHUP stop every child as Ctrl-C does
        if stack is ServedStack.kserve:
            from kserve_impl.up import up as run_kserve

            run_kserve(settings, port=port, console=console, topology=topology.value)
        else:
            from rayserve_impl.up import up as run_ray

            run_ray(settings, port=port, console=console)


@app.command()
def bench(stack: Annotated[Stack, typer.Option(help="Which stack to load.")],
          scenario: Annotated[str, typer.Option(help="Scenario name (loadtests/scenarios.py).")]
          = "smoke",
          out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
          config: ConfigOption = None) -> None:
    """Run one locust scenario against one stack, with Prometheus, and write its report."""
    from loadtests.harness import bench as run_bench
    from loadtests.harness import default_out_dir

    run_bench(load_settings(config), stack.value, scenario, out or default_out_dir(), console)


@app.command()
def compare(scenario: Annotated[str | None, typer.Option(
                help="Scenario name (default: the full demo scenario).")] = None,
            engine_parity: Annotated[bool, typer.Option(
                "--engine-parity", help="Run every stack on the same engine.")] = False,
            out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
            experiment: Annotated[list[ExperimentKind] | None, typer.Option(
                help="Also run this experiment on kserve and rayserve (repeatable); "
                     "its section joins the report.")] = None,
            config: ConfigOption = None) -> None:
    """In-process reference, KServe and Ray Serve under one scenario; one report."""
    from loadtests.harness import compare as run_compare
    from loadtests.harness import default_out_dir

    settings = load_settings(config)
    out = out or default_out_dir()
    report_dir = run_compare(settings, scenario, engine_parity, out, console)
    if experiment:
        from loadtests.experiment_report import add_to_report
        from loadtests.experiments import experiment as run_experiment

        plan = "smoke" if scenario == "smoke" else "demo"
        kinds = [k.value for k in experiment]
        for stack in ServedStack:
            try:
                for result in run_experiment(settings, kinds, stack.value, plan,
                                             report_dir / "experiments", console):
                    print_figures(result)
            except Exception as exc:  # one failed stack must not hide the other
                console.print(f"[red]experiments on {stack.value} failed:[/] "
                              f"{type(exc).__name__}: {exc}")
        add_to_report(report_dir)
        console.print(f"[bold green]report with experiments:[/] {report_dir / 'index.html'}")


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


@app.command("experiment")
def experiment_cmd(
        kinds: Annotated[list[ExperimentKind], typer.Argument(
            help="rollback, kill-replica, overload: one or more, run in order on one start")],
        stack: Annotated[ServedStack, typer.Option(help="kserve or rayserve")],
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
        config: ConfigOption = None) -> None:
    """Act on a stack under steady load (roll out and back, kill a replica, overload it); each
    experiment writes OUT/<kind>-<stack>/: result.json, the raw records, the timeline and
    timeline.png."""
    from loadtests.experiments import PLANS
    from loadtests.experiments import experiment as run_experiment
    from loadtests.harness import default_out_dir

    if scenario not in PLANS:
        console.print(f"[red]unknown scenario {scenario!r}[/]; known: {', '.join(PLANS)}")
        raise typer.Exit(2)
    out = out or default_out_dir()
    results = run_experiment(load_settings(config), [k.value for k in kinds], stack.value,
                             scenario, out, console, change=change.value if change else None,
                             mode=mode, percent=percent, target=target)
    for result in results:
        print_figures(result)
    console.print(f"[bold green]results:[/] {out}/<kind>-{stack.value}/result.json "
                  "(and timeline.png beside it)")


@app.command()
def demo(config: ConfigOption = None,
         questions: Annotated[int, typer.Option(help="How many sample questions.")] = 5) -> None:
    """Run the in-process pipeline over shipped sample questions and print a table."""
    from twinserve.demo import run_demo

    run_demo(load_settings(config), console, questions)


app.command("decide")(decide_record)

if __name__ == "__main__":
    app()

"""The `twinserve` command: prepare assets, ask a question, bring a stack up, measure, decide.

Each measuring command lives in its own module (bench_commands, experiment_commands, decide);
this one registers them beside the small ones.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.table import Table

from shared_pipeline.schemas import RequestError
from twinserve.bench_commands import bench, compare
from twinserve.decide import decide as decide_record
from twinserve.experiment_commands import experiment_cmd
from twinserve.options import (
    ConfigOption,
    EngineChoice,
    ServedStack,
    Stack,
    Topology,
    TopologyOption,
    console,
    load_settings,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="One RAG LLM pipeline on KServe and on Ray Serve, measured the same way.")


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
def demo(config: ConfigOption = None,
         questions: Annotated[int, typer.Option(help="How many sample questions.")] = 5) -> None:
    """Run the in-process pipeline over shipped sample questions and print a table."""
    from twinserve.demo import run_demo

    run_demo(load_settings(config), console, questions)


app.command()(bench)
app.command()(compare)
app.command("experiment")(experiment_cmd)
app.command("decide")(decide_record)

if __name__ == "__main__":
    app()

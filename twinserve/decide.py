"""`twinserve decide`: a route's inventory and a comparison report give a decision record.

Exit 0 when it decided; 1 when the record says "no decision" (missing evidence, no candidate
meets the requirements, or a fit tie); 2 when the inventory or the report cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from loadtests.decision.evidence import ReportError
from loadtests.decision.inventory import InventoryError
from loadtests.decision.record import write_record

console = Console()


def decide(inventory: Annotated[Path, typer.Option(
               "--inventory", help="The route's inventory (YAML, docs/decision.md).",
               exists=True, dir_okay=False)],
           report: Annotated[Path, typer.Option(
               "--report", help="A `twinserve compare` output directory.", exists=True,
               file_okay=False)],
           out: Annotated[Path | None, typer.Option(
               "--out", help="Markdown record (default REPORT/decision.md); decision.json is "
                             "written beside it.")] = None) -> None:
    """Check the inventory's requirements against the report's figures, weigh the fit, and
    write the decision record with the alternative rejected."""
    try:
        path, data = write_record(inventory, report, out)
    except (InventoryError, ReportError) as exc:
        console.print(f"[red]cannot decide:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    console.print(f"record: {path}  ({path.parent / 'decision.json'})", highlight=False)
    if data["decision"] is None:
        console.print(f"[red]no decision[/]: {data['why_no_decision']}", highlight=False)
        for item in data["missing"]:
            console.print(f"  missing: {item}", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"[bold green]decision:[/] {data['summary']}", highlight=False)

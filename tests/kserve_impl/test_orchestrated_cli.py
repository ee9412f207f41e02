"""`--topology` on `twinserve up` and `ask`: the option exists, and the graph refuses to stream
before any request is sent (its router buffers every step)."""

from __future__ import annotations

from typer.testing import CliRunner

from twinserve.cli import app


def test_up_offers_both_topologies() -> None:
    result = CliRunner().invoke(app, ["up", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "graph|orchestrated" in result.output


def test_asking_the_graph_to_stream_says_to_use_the_orchestrated_topology() -> None:
    result = CliRunner().invoke(app, ["ask", "--stack", "kserve", "--stream", "hi"],
                                terminal_width=200)
    assert result.exit_code == 2
    assert "--topology orchestrated" in result.output

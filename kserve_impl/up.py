"""`twinserve up kserve`: the local KServe stack in the foreground until Ctrl-C or a crash.

It starts every model server and the graph runner on `port` (8080 by default, the router's
port), prints the base URL, reports every supervisor restart, and stops everything on SIGINT,
SIGTERM or SIGHUP (the caller installs `shared_pipeline.shutdown.graceful_signals`). When this
process is killed outright, the children's parent-death signal and the watchdog stop them.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape

from kserve_impl.local import DEFAULT_PORT, LocalStack
from kserve_impl.server_process import ServerProcess, StackError
from shared_pipeline.config import Settings


def up(settings: Settings, port: int | None = None, console: Console | None = None,
       topology: str = "graph") -> None:
    """Start the stack (`topology`: graph or orchestrated), print its URL, serve until
    interrupted or a crash."""
    console = console or Console()
    stack = LocalStack(settings, port or DEFAULT_PORT, topology=topology)
    started = time.perf_counter()
    console.print(f"starting the KServe stack ({topology}) from {stack.manifest_dir} "
                  f"(logs: {stack.log_dir})")

    def on_ready(server: ServerProcess) -> None:
        console.print(f"  [green]ready[/] {server.name:<16} {server.url}  "
                      f"({server.ready_after_s:.1f}s)")

    try:
        stack.start(on_ready)
        stack.supervise()
        console.print(f"\n[bold]KServe stack ready[/] in {time.perf_counter() - started:.1f}s: "
                      f"{stack.url}  (OpenAI base URL {stack.url}/v1)\n"
                      f"  twinserve ask --stack kserve --topology {topology} --url {stack.url}"
                      " \"What does yield do?\"\n"
                      "Ctrl-C stops everything.")
        reported = 0
        while stack.graph.exit_code() is None:
            new = stack.events[reported:]
            reported += len(new)
            for event in new:
                console.print(f"  [yellow]{event['server']} {event['event']}[/] "
                              + (f"(exit code {event['code']}; restarting in "
                                 f"{event['restart_in_s']:.0f}s)" if event["event"] == "exited"
                                 else f"(restart {event['restarts']})"))
            time.sleep(0.5)
        raise stack.graph.failure(f"exited with code {stack.graph.exit_code()} while serving")
    except KeyboardInterrupt:
        console.print("\nstopping the KServe stack ...")
    except StackError as exc:
        console.print(f"[red]KServe stack failed:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    finally:
        stack.stop()
    console.print("stopped.")

"""`twinserve up rayserve`: the local Ray stack in the foreground until interrupted.

SIGINT, SIGTERM and SIGHUP all stop Serve and Ray cleanly (the caller installs
`shared_pipeline.shutdown.graceful_signals`); when this process is killed outright, the
parent-death signal of `ray start` and the watchdog end the cluster it started.
"""

from __future__ import annotations

import time

from rich.console import Console

from rayserve_impl.local import DEFAULT_PORT, running_stack
from shared_pipeline.config import Settings


def up(settings: Settings, port: int | None = None, console: Console | None = None) -> None:
    """Start Ray and the Serve app, print the base URL, serve until interrupted, stop cleanly."""
    console = console or Console()
    try:
        with console.status("starting Ray and deploying the Serve config "
                            "(two vLLM engines: about a minute and a half on CPU)"):
            stack_cm = running_stack(settings, port or DEFAULT_PORT)
            stack = stack_cm.__enter__()  # stops what it started if interrupted here
    except KeyboardInterrupt:
        console.print("interrupted while starting; stopped.")
        return
    try:
        console.print(f"[green]Ray Serve stack ready[/] in {stack.startup_s:.0f}s: "
                      f"{stack.url}  (OpenAI API at {stack.url}/v1)")
        console.print(f"metrics: {stack.metrics_url}   dashboard: {stack.dashboard.url}")
        console.print("Ctrl-C stops Serve and Ray.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping Serve and Ray ...")
    finally:
        stack_cm.__exit__(None, None, None)
        console.print("stopped.")

"""SIGTERM and SIGHUP end a launcher the way Ctrl-C does.

systemd, `docker stop`, a CI timeout and a closing terminal send SIGTERM or SIGHUP, not SIGINT.
`graceful_signals()` makes them raise `KeyboardInterrupt` in the main thread, so the launcher's
own `except KeyboardInterrupt` / `finally` blocks stop every child in order. A second signal
during that shutdown is ignored, so it cannot interrupt the cleanup halfway.

SIGINT is handled here too, not left to Python's default: a shell without job control starts
background commands (`make demo &`, a CI step's `cmd &`) with SIGINT ignored, and Python then
installs no KeyboardInterrupt handler, so such a launcher would not stop on `kill -INT`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def graceful_signals() -> Iterator[None]:
    """Within the block (main thread only), SIGINT / SIGTERM / SIGHUP raise `KeyboardInterrupt`
    once."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal handlers can only be installed in the main thread")
    fired = False

    def on_signal(signum: int, frame) -> None:
        nonlocal fired
        if fired:
            return  # already shutting down
        fired = True
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

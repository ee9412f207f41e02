"""`twinserve up kserve` stopped by SIGTERM or SIGKILL leaves nothing behind, and listens on
loopback only while it runs.

Each test starts the real launcher (`tests.launcher_checks.start_up`), collects its process
tree and listening sockets with psutil, signals it, and checks that within 30 s no process it
started is alive and every port it used is free. Slow: each starts the whole stack, so the
graceful path runs once, with SIGTERM: Ctrl-C and SIGHUP reach the same handler
(`shared_pipeline.shutdown.graceful_signals`), which tests/shared_pipeline/test_processes.py
sends all three signals to.
"""

from __future__ import annotations

import signal

import pytest

from tests.launcher_checks import assert_all_gone, kill_leftovers, start_up

pytestmark = pytest.mark.slow
STACK = "kserve"


def test_a_running_stack_listens_on_loopback_only_and_sigterm_stops_it(settings, tmp_path):
    launched = start_up(STACK, tmp_path)
    try:
        assert launched.listening, "no listening socket found"
        exposed = sorted({(ip, port) for ip, port, _ in launched.listening
                          if ip != "127.0.0.1"})
        launched.process.send_signal(signal.SIGTERM)
        assert_all_gone(launched, "SIGTERM")
        launched.process.wait(120)
        assert launched.process.returncode == 0, launched.log()
        assert "stopped." in launched.log()
        assert not exposed, f"listening beyond loopback: {exposed}"
    finally:
        kill_leftovers(launched)


def test_nothing_outlives_a_sigkilled_launcher(settings, tmp_path):
    launched = start_up(STACK, tmp_path)
    try:
        launched.process.send_signal(signal.SIGKILL)
        assert_all_gone(launched, "SIGKILL")
        launched.process.wait(120)
    finally:
        kill_leftovers(launched)

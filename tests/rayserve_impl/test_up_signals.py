"""`twinserve up rayserve` stopped by Ctrl-C, SIGTERM, SIGHUP or SIGKILL leaves nothing behind,
and listens on loopback only while it runs.

Each test starts the real launcher (`tests.launcher_checks.start_up`), collects its process
tree and listening sockets with psutil, signals it, and checks that within 30 s no process it
started is alive and every port it used is free. Slow: each starts the whole stack.
"""

from __future__ import annotations

import signal

import pytest

from tests.launcher_checks import assert_all_gone, kill_leftovers, start_up

pytestmark = pytest.mark.slow
STACK = "rayserve"


def test_a_running_stack_listens_on_loopback_only_and_ctrl_c_stops_it(settings, tmp_path):
    launched = start_up(STACK, tmp_path)
    try:
        assert launched.listening, "no listening socket found"
        exposed = sorted({(ip, port) for ip, port, _ in launched.listening
                          if ip != "127.0.0.1"})
        launched.process.send_signal(signal.SIGINT)
        launched.process.wait(120)
        assert_all_gone(launched, "SIGINT")
        assert not exposed, f"listening beyond loopback: {exposed}"
    finally:
        kill_leftovers(launched)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["sigterm", "sighup", "sigkill"])
def test_nothing_outlives_the_launcher(settings, tmp_path, sig):
    launched = start_up(STACK, tmp_path)
    try:
        launched.process.send_signal(sig)
        assert_all_gone(launched, sig.name)
        launched.process.wait(120)
        if sig != signal.SIGKILL:  # a graceful stop: Serve drained, Ray stopped, exit 0
            assert launched.process.returncode == 0, launched.log()
            assert "stopped." in launched.log()
    finally:
        kill_leftovers(launched)

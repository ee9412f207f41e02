"""`twinserve up rayserve` stopped by SIGTERM or SIGKILL leaves nothing behind, and listens on
loopback only while it runs.

Each test starts the real launcher (`tests.launcher_checks.start_up`), collects its process
tree and listening sockets with psutil, signals it, and checks that within 30 s no process it
started is alive and every port it used is free. Slow: each starts the whole stack (~2 min on
2 cores), so the graceful path runs once, with SIGTERM: Ctrl-C and SIGHUP reach the same
handler (`shared_pipeline.shutdown.graceful_signals`), which
tests/shared_pipeline/test_processes.py sends all three signals to.
"""

from __future__ import annotations

import signal

import pytest

from tests.launcher_checks import (
    assert_all_gone,
    command_of,
    is_loopback,
    kill_leftovers,
    start_up,
)

pytestmark = pytest.mark.slow
STACK = "rayserve"


# The one port Ray 2.60 gives no way to bind to loopback: every Serve replica's inter-deployment
# gRPC server, started unconditionally with `add_port_to_grpc_server(self._server, "[::]:0")`
# (ray/serve/_private/replica.py, `Replica._on_initialized`), no option or env var for the host.
REPLICA_PROCESS = "ray::ServeReplica:"
REPLICA_GRPC_HOST = "::"


def test_a_running_stack_listens_on_loopback_only_and_sigterm_stops_it(settings, tmp_path):
    launched = start_up(STACK, tmp_path)
    try:
        assert launched.listening, "no listening socket found"
        commands = {pid: command_of(launched, pid) for _, _, pid in launched.listening}
        replica_grpc = [(ip, port, pid) for ip, port, pid in launched.listening
                        if ip == REPLICA_GRPC_HOST and commands[pid].startswith(REPLICA_PROCESS)]
        exposed = sorted({(ip, port, commands[pid][:80]) for ip, port, pid in launched.listening
                          if not is_loopback(ip) and (ip, port, pid) not in replica_grpc})
        ray_core = [port for ip, port, pid in launched.listening
                    if "gcs_server" in commands[pid] or "/raylet" in commands[pid]]
        print(f"{len(launched.listening)} listeners, {len(replica_grpc)} Serve replica gRPC "
              f"servers on [::] (Ray 2.60 hard-codes it), GCS/raylet ports {ray_core}")
        launched.process.send_signal(signal.SIGTERM)
        assert_all_gone(launched, "SIGTERM")
        launched.process.wait(120)
        # a graceful stop: Serve drained, Ray stopped, exit 0
        assert launched.process.returncode == 0, launched.log()
        assert "stopped." in launched.log()
        assert not exposed, f"listening beyond loopback: {exposed}"
        assert ray_core, "GCS and raylet ports not found among the listeners"
        assert len({pid for _, _, pid in replica_grpc}) == len(replica_grpc), \
            "a replica opened more than its one inter-deployment gRPC port on [::]"
    finally:
        kill_leftovers(launched)


def test_nothing_outlives_a_sigkilled_launcher(settings, tmp_path):
    launched = start_up(STACK, tmp_path)
    try:
        launched.process.send_signal(signal.SIGKILL)
        assert_all_gone(launched, "SIGKILL")  # PDEATHSIG and shared_pipeline.watchdog
        launched.process.wait(120)
    finally:
        kill_leftovers(launched)

"""`twinserve up <stack>` as a user runs it, and what the OS says about its processes.

`start_up` runs the real CLI in a subprocess, waits until its OpenAI API answers, and collects
every process it started (psutil: its whole tree) and every TCP port they listen on. The tests
then signal the launcher and check that nothing of it is left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from shared_pipeline.processes import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 900.0
READY_PATHS = {"kserve": "/readyz", "rayserve": "/v1/models"}  # the entry point's readiness
# What the launcher prints once every part is up. Ray's ingress answers `/v1/models` before the
# other replicas have finished starting (and opened their own ports), so wait for the line too.
READY_LINES = {"rayserve": "Ray Serve stack ready"}
GONE_WITHIN_S = 30.0  # the bar: nothing alive, every port free, 30 s after the signal


@dataclass
class Launched:
    process: subprocess.Popen
    log_path: Path
    tree: list[psutil.Process]  # every process the launcher started (not the launcher)
    listening: list[tuple[str, int, int]]  # (address, port, pid) of every TCP listener

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_up(stack: str, tmp_path: Path) -> Launched:
    """`twinserve up <stack> --port N`, ready; its process tree and listening sockets."""
    port = free_port()
    log_path = tmp_path / f"up-{stack}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from twinserve.cli import app; app()", "up", stack,
             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
    url = f"http://{LOOPBACK}:{port}{READY_PATHS[stack]}"
    started = time.perf_counter()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"twinserve up {stack} exited with {process.returncode}:\n"
                                 f"{log_path.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(url, timeout=5).status_code == 200 and (
                    READY_LINES.get(stack, "") in log_path.read_text(errors="replace")):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"twinserve up {stack} not ready in {READY_TIMEOUT_S:.0f}s")
        time.sleep(1)
    print(f"twinserve up {stack}: ready in {time.perf_counter() - started:.1f}s")
    time.sleep(3)  # late starters (e.g. Ray's client server) have had their chance to listen
    tree = psutil.Process(process.pid).children(recursive=True)
    listening = []
    for proc in tree:
        try:
            for conn in proc.connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append((conn.laddr.ip, conn.laddr.port, proc.pid))
                    if not is_loopback(conn.laddr.ip):
                        print(f"NOT LOOPBACK {conn.laddr.ip}:{conn.laddr.port} "
                              f"{' '.join(proc.cmdline())[:200]}")
        except psutil.NoSuchProcess:
            pass
    print(f"{len(tree)} processes, listening on "
          + ", ".join(sorted({f'{ip}:{p}' for ip, p, _ in listening})))
    return Launched(process, log_path, tree, listening)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (gRPC's dual-stack sockets)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def command_of(launched: Launched, pid: int) -> str:
    """The command line of one process of the tree ("" once it is gone)."""
    for proc in launched.tree:
        if proc.pid == pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                return " ".join(proc.cmdline())
    return ""


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that still run (a zombie runs nothing and holds no port)."""
    left = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


def port_in_use(address: str, port: int) -> bool:
    """True when the next `twinserve up` could not bind `address:port` (uvicorn's way)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def held_by_others(port: int, tree: list[psutil.Process]) -> list[int]:
    """Live processes outside the launched tree that now hold `port` (an ephemeral port the
    stack freed can be taken at once by anyone's outgoing connection: that is not a leak)."""
    ours = {proc.pid for proc in tree}
    holders = {conn.pid for conn in psutil.net_connections(kind="inet")
               if conn.laddr and conn.laddr.port == port}
    if None in holders or holders & ours:
        return []  # not attributable, or still ours: count it as bound
    return sorted(holders)


def assert_all_gone(launched: Launched, signal_name: str) -> None:
    """Within GONE_WITHIN_S of the signal: no process of the tree runs, every port is free."""
    sent = time.perf_counter()
    deadline = time.monotonic() + GONE_WITHIN_S
    left: list[psutil.Process] = launched.tree
    busy: list[tuple[str, int, int]] = launched.listening
    while time.monotonic() < deadline:
        left = alive(launched.tree)
        busy = [entry for entry in launched.listening if port_in_use(entry[0], entry[1])
                and not held_by_others(entry[1], launched.tree)]
        if not left and not busy:
            break
        time.sleep(0.5)
    print(f"after {signal_name}: everything gone in {time.perf_counter() - sent:.1f}s")
    described = []
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
    assert not left, f"alive {GONE_WITHIN_S:.0f}s after {signal_name}: {described}\n" \
                     f"{launched.log()}"
    assert not busy, f"ports still bound after {signal_name}: {busy}"


def kill_leftovers(launched: Launched) -> None:
    """After a failed check: SIGKILL whatever is left, so one failure does not leak a stack."""
    for proc in alive(launched.tree):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    if launched.process.poll() is None:
        launched.process.kill()
    launched.process.wait(30)

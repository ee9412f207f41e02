"""The HTTP rows: a null KServe ModelServer called directly and through the local graph runner,
and the bare uvicorn floor. Each server is its own process on a free loopback port, as a stage's
pod is; the client (httpx, pooled) runs in the benchmark's process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadtests.hops.measure import measure_cell
from loadtests.hops.payloads import body_bytes, make_payload

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
NULL_MODEL = "null"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def one_step_graph() -> dict[str, Any]:
    """An InferenceGraph of one Sequence node with one Hard step: the null model."""
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
            "metadata": {"name": "hops"},
            "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": [
                {"name": "null", "serviceName": NULL_MODEL, "data": "$request",
                 "dependency": "Hard"}]}}}}


class Server:
    """One child process; `stop()` ends it (and only it) by PID."""

    def __init__(self, name: str, command: list[str], ready_url: str, log_dir: Path) -> None:
        self.name, self.command, self.ready_url = name, command, ready_url
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()),
                                                          env.get("PYTHONPATH")]))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextmanager
def http_servers() -> Iterator[dict[str, str]]:
    """Start the null model server, the graph runner in front of it and the floor; yield
    row name -> the URL a hop POSTs to. Every process is stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="twinserve-hops-") as tmp:
        log_dir = Path(tmp)
        graph_file = log_dir / "graph.yaml"
        graph_file.write_text(yaml.safe_dump(one_step_graph()), encoding="utf-8")
        model_port, graph_port, floor_port = free_port(), free_port(), free_port()
        predict = f"http://{HOST}:{model_port}/v1/models/{NULL_MODEL}:predict"
        py = sys.executable
        servers = [
            Server("null-kserve", [py, "-m", "loadtests.hops.null_kserve", "--model_name",
                                   NULL_MODEL, "--http_port", str(model_port)],
                   f"http://{HOST}:{model_port}/v1/models/{NULL_MODEL}", log_dir),
            Server("graph", [py, "-m", "kserve_impl.graph", "--graph", str(graph_file),
                             "--host", HOST, "--port", str(graph_port),
                             "--service", f"{NULL_MODEL}={predict}"],
                   f"http://{HOST}:{graph_port}/readyz", log_dir),
            Server("floor", [py, "-m", "loadtests.hops.floor", "--port", str(floor_port)],
                   f"http://{HOST}:{floor_port}/", log_dir),
        ]
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
            yield {"kserve_direct": predict,
                   "kserve_graph": f"http://{HOST}:{graph_port}/v1/chat/completions",
                   "floor_http": f"http://{HOST}:{floor_port}/"}
        finally:
            for server in servers:
                server.stop()


async def measure_http(url: str, sizes: list[int], cells: list[tuple[int, int]],
                       warmup: int) -> list[dict[str, Any]]:
    """Every (size, concurrency, n) cell of one HTTP row, one pooled client throughout."""
    results = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for size in sizes:
            body = body_bytes(make_payload(size))
            headers = {"content-type": "application/json"}

            async def call(body: bytes = body, headers: dict[str, str] = headers) -> None:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200 or len(response.content) < len(body) // 2:
                    raise RuntimeError(f"{url} answered {response.status_code}: "
                                       f"{response.text[:200]}")

            for concurrency, n in cells:
                stats = await measure_cell(call, n, concurrency, warmup)
                results.append({"size": size, "concurrency": concurrency} | stats)
    return results

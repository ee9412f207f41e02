"""Start vLLM's own server with the stacks' flags and environment, time it to /health, stop it.

The server's log goes to /tmp/vstart.server.log (run from the repo root with PYTHONPATH=.).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx

from shared_pipeline.config import Settings
from shared_pipeline.engines.vllm_server import vllm_server_command
from shared_pipeline.processes import free_port

port = free_port()
argv, env = vllm_server_command(Settings(), port=port)
print(" ".join(argv), env, flush=True)
t0 = time.time()
with open("/tmp/vstart.server.log", "w") as log:
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
try:
    while time.time() - t0 < 400:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    print("ready", round(time.time() - t0, 1), flush=True)
finally:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)

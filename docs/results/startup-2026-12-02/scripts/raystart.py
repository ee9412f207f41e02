"""Start the local Ray stack with default settings; print its start time and, from the Serve
controller's log, when each replica was added and started (run from the repo root)."""

from __future__ import annotations

import glob
import os
import re
import time

from rayserve_impl.local import running_stack
from shared_pipeline.config import Settings


def clock(line: str) -> str:
    match = re.search(r"(\d\d:\d\d:\d\d),", line)
    return match.group(1) if match else "?"


t0 = time.time()
with running_stack(Settings()) as stack:
    print("startup_s", round(stack.startup_s, 1), flush=True)
    logs = sorted(glob.glob(f"{stack.temp_dir}/session_latest/logs/serve/*.log"))
    for path in logs:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        if lines:
            print(os.path.basename(path)[:60], clock(lines[0]), clock(lines[-1]), len(lines))
    for path in (p for p in logs if "controller_" in os.path.basename(p)):
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(r"Adding|started successfully", line):
                    print("  ", line.rstrip()[:200])
print("total", round(time.time() - t0, 1))

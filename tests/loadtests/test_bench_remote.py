"""`twinserve bench --url` and `compare --url NAME=URL` against a stack started separately on
loopback, as a remote deployment would be: the in-process reference server is started by
loadtests' own launcher, then the CLI, in its own process, benchmarks it by URL with a YAML
scenario of tiny phases.

Three runs: with no Prometheus (client-side figures only, and the report says so), the same by
`compare`, and with `--prometheus-url` naming a Prometheus that this test starts and points at
the server's /metrics, as a cluster's Prometheus scrapes the pods (the harness only queries
it). Durations are printed, not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtests.inprocess_stack import running_stack
from loadtests.prometheus import PrometheusServer, find_prometheus, host_port, write_scrape_config
from loadtests.remote import NO_SERVER_SIDE
from shared_pipeline.config import Settings
from shared_pipeline.processes import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY = """name: tiny-remote
description: smoke cut short, for a benchmark by URL
max_tokens: 4
warmup_requests: 1
stop_timeout_s: 10
scrape_interval_s: 1
phases:
- {kind: concurrency, name: c1, users: 1, duration_s: 4}
- {kind: poisson, name: poisson-0.5, rate_rps: 0.5, duration_s: 4, max_users: 2, seed: 7}
"""


def bench_by_url(url: str, out: Path, scenario: Path, *extra: str,
                 command: tuple[str, ...] = ("bench", "--stack-name", "inprocess", "--url")
                 ) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "twinserve.cli", *command, url, "--scenario", str(scenario),
         "--out", str(out), *extra],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    print(f"{command[0]} --url {' '.join(extra)}: {time.perf_counter() - started:.0f}s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "raw" / "inprocess" / "result.json").read_text())


def test_bench_by_url_against_a_separately_started_stack(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    with running_stack(Settings(), log_path=tmp_path / "server.log") as server:
        plain = bench_by_url(server.url, tmp_path / "plain", scenario)
        compared = bench_by_url(f"inprocess={server.url}", tmp_path / "compare", scenario,
                                command=("compare", "--url"))
        binary = find_prometheus()
        if binary is None:
            pytest.skip("prometheus is not installed: --prometheus-url not exercised")
        config = tmp_path / "prometheus.yml"
        write_scrape_config(config, {"inprocess": [host_port(server.metrics_url)]}, 1.0)
        prometheus = PrometheusServer(binary, config, tmp_path / "tsdb", free_port(),
                                      tmp_path / "prometheus.log")
        prometheus.start()
        try:
            assert prometheus.wait_scraped("inprocess")
            queried = bench_by_url(server.url, tmp_path / "prom", scenario,
                                   "--prometheus-url", prometheus.url)
        finally:
            prometheus.stop()

    # client-side figures, from the stack's answers, with no server-side source
    assert plain["url"] == server.url and plain["startup_s"] == 0.0
    assert plain["engine"] == server.engine  # what its /v1/models card says
    assert plain["overall"]["ok"] > 0 and plain["overall"]["failed"] == 0
    assert [p["phase"] for p in plain["phases"]][:2] == ["c1", "poisson-0.5"]
    assert all(not p["stage_seconds"] for p in plain["server"]["phases"].values())
    assert any("remote endpoint" in n for n in plain["notes"])
    report = (tmp_path / "plain" / "report.md").read_text()
    assert NO_SERVER_SIDE in report

    # compare --url NAME=URL: the same run, of the named deployments only
    assert compared["overall"]["ok"] > 0
    summary = json.loads((tmp_path / "compare" / "summary.json").read_text())
    assert list(summary["stacks"]) == ["inprocess"]

    # the given Prometheus answered the server-side figures
    assert queried["overall"]["ok"] > 0
    stages = queried["server"]["phases"]["c1"]["stage_seconds"]
    assert {"retrieve", "generate"} <= set(stages), stages
    assert f"Prometheus at {prometheus.url}" in (tmp_path / "prom" / "report.md").read_text()

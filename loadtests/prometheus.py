"""A local Prometheus for the benchmark: config rendering, the process, and PromQL over HTTP.

The harness runs Debian's `prometheus` binary (`make prometheus` installs it where it can) with
manifests/monitoring/prometheus-local.yml, the shipped scrape config, filled in with the ports the
local stacks listen on. When a stack starts, its targets are written into the config and
Prometheus reloads it (`--web.enable-lifecycle`), so one Prometheus holds every stack of a
comparison run, as one would on a cluster.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from shared_pipeline.processes import LOOPBACK, ManagedProcess

MONITORING_DIR = Path(__file__).resolve().parents[1] / "manifests" / "monitoring"
SCRAPE_TEMPLATE = MONITORING_DIR / "prometheus-local.yml"
RECORDING_RULES = MONITORING_DIR / "recording-rules.yml"
RAY_PREFIX_REGEX = r"ray_(pipeline_.*)"

Labels = dict[str, str]


def find_prometheus() -> str | None:
    """The `prometheus` binary on PATH (Debian installs it in /usr/bin), or None."""
    return shutil.which("prometheus")


def prometheus_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 and words[1] == "version" else "unknown"


def host_port(url: str) -> str:
    """`http://127.0.0.1:8080/metrics` -> `127.0.0.1:8080` (a Prometheus static target)."""
    return httpx.URL(url).netloc.decode()


def duration(seconds: float) -> str:
    """A Prometheus duration: whole units only (`2s`, `500ms`)."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def render_scrape_config(targets: dict[str, list[str]], scrape_interval_s: float = 2.0,
                         template: Path = SCRAPE_TEMPLATE,
                         rules: Path | None = RECORDING_RULES) -> dict[str, Any]:
    """The template with each job's targets replaced; jobs without targets are left out.

    `targets` maps a job name of the template (`kserve`, `rayserve`, `inprocess`) to
    `host:port` strings. Everything else (relabel rules included) stays as shipped.
    """
    config = yaml.safe_load(template.read_text())
    interval = duration(scrape_interval_s)
    config["global"].update(scrape_interval=interval, scrape_timeout=interval,
                            evaluation_interval=interval)
    config["rule_files"] = [str(rules)] if rules else []
    known = {job["job_name"] for job in config["scrape_configs"]}
    unknown = set(targets) - known
    if unknown:
        raise KeyError(f"no scrape job {sorted(unknown)} in {template.name}; "
                       f"it has {sorted(known)}")
    jobs = []
    for job in config["scrape_configs"]:
        wanted = targets.get(job["job_name"])
        if wanted:
            job["static_configs"] = [{"targets": list(wanted)}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def write_scrape_config(path: Path, targets: dict[str, list[str]],
                        scrape_interval_s: float = 2.0) -> Path:
    config = render_scrape_config(targets, scrape_interval_s)
    path.write_text("# Written by loadtests/prometheus.py from manifests/monitoring/"
                    "prometheus-local.yml\n" + yaml.safe_dump(config, sort_keys=False))
    return path


# ---------------------------------------------------------------- PromQL results
@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float


@dataclass(frozen=True)
class Series:
    labels: Labels
    points: list[tuple[float, float]]


def _number(text: str) -> float:
    return float(text)  # Prometheus sends "NaN", "+Inf", "-Inf" as strings; float() reads them


def parse_vector(body: dict[str, Any]) -> list[Sample]:
    """An instant-query answer (`/api/v1/query`, resultType vector) as samples."""
    data = _data(body, "vector")
    return [Sample(r["metric"], _number(r["value"][1])) for r in data["result"]]


def parse_matrix(body: dict[str, Any]) -> list[Series]:
    """A range-query answer (`/api/v1/query_range`, resultType matrix) as series."""
    data = _data(body, "matrix")
    return [Series(r["metric"], [(float(t), _number(v)) for t, v in r["values"]])
            for r in data["result"]]


def _data(body: dict[str, Any], kind: str) -> dict[str, Any]:
    if body.get("status") != "success":
        raise PromQLError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    data = body["data"]
    if data["resultType"] != kind:
        raise PromQLError(f"expected a {kind}, Prometheus answered a {data['resultType']}")
    return data


class PromQLError(RuntimeError):
    pass


# ---------------------------------------------------------------- the process
class PrometheusServer:
    """One Prometheus process on loopback, with its TSDB in `data_dir`."""

    def __init__(self, binary: str, config_path: Path, data_dir: Path, port: int,
                 log_path: Path) -> None:
        self.binary = binary
        self.config_path = config_path
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.url = f"http://{LOOPBACK}:{port}"
        self.proc: ManagedProcess | None = None
        self.version = prometheus_version(binary)

    def start(self, timeout_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess(
            "prometheus",
            [self.binary, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address={LOOPBACK}:{self.port}", "--web.enable-lifecycle",
             "--storage.tsdb.retention.time=1d", "--log.level=warn"],
            self.log_path, ready_url=f"{self.url}/-/ready")
        self.proc.start()
        self.proc.wait_ready(timeout_s)

    def reload(self) -> None:
        """Re-read the config file (new targets); Prometheus checks it before switching."""
        r = httpx.post(f"{self.url}/-/reload", timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"prometheus reload failed: {r.status_code} {r.text}")

    def wait_scraped(self, job: str, timeout_s: float = 30.0) -> bool:
        """Wait until every target of `job` has been scraped successfully once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, KeyError):
                active = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()[
                    "data"]["activeTargets"]
                mine = [t for t in active if t["labels"].get("job") == job]
                if mine and all(t["health"] == "up" for t in mine):
                    return True
            time.sleep(0.5)
        return False

    def query_raw(self, expr: str, at: float | None = None) -> dict[str, Any]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30).json()

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        return parse_vector(self.query_raw(expr, at))

    def query_range_raw(self, expr: str, start: float, end: float,
                        step_s: float) -> dict[str, Any]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{max(step_s, 0.001):g}"}
        return httpx.get(f"{self.url}/api/v1/query_range", params=params, timeout=30).json()

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        return parse_matrix(self.query_range_raw(expr, start, end, step_s))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace_s=20)


def window(start: float, end: float) -> str:
    """A PromQL range covering [start, end], in whole seconds."""
    return f"{max(1, math.ceil(end - start))}s"

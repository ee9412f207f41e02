"""Where the harness reads server-side figures from: a local Prometheus when one is installed,
else the fallback scraper polling /metrics itself (and the report says which).

Targets grow as stacks start, so one store serves a whole comparison: each stack is added to
Prometheus's scrape config (and the server reloaded) or to the scraper's target list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from loadtests.prometheus import (
    PrometheusServer,
    find_prometheus,
    host_port,
    write_scrape_config,
)
from loadtests.scraper import FallbackScraper
from loadtests.serverside import PromQLSource, ServerSideSource
from shared_pipeline.processes import free_port


@dataclass
class MetricsStore:
    """Prometheus when installed, else the fallback scraper; targets grow as stacks start."""

    source: ServerSideSource
    prometheus: PrometheusServer | None
    scraper: FallbackScraper | None
    config_path: Path | None
    scrape_interval_s: float
    targets: dict[str, list[str]] = field(default_factory=dict)  # job -> metrics URLs
    note: str = ""
    # The harness names the scrape jobs here, so a query may select a run's series by its job.
    names_jobs: bool = True

    def job_filter(self, job: str) -> str | None:
        """`job` where this store's series carry the job the harness named, else None."""
        return job if self.names_jobs else None

    def add_stack(self, stack: str, metrics_urls: list[str]) -> bool:
        """Scrape `stack`'s endpoints from now on, as job `stack`; True once the first scrape
        succeeded."""
        self.targets[stack] = metrics_urls
        if self.prometheus is not None:
            write_scrape_config(self.config_path,
                                {job: [host_port(u) for u in urls]
                                 for job, urls in self.targets.items()},
                                self.scrape_interval_s)
            self.prometheus.reload()
            return self.prometheus.wait_scraped(stack)
        self.scraper.set_targets(stack, metrics_urls)
        return True


@contextmanager
def metrics_store(work_dir: Path, scrape_interval_s: float,
                  console: Console) -> Iterator[MetricsStore]:
    binary = find_prometheus()
    if binary:
        config = work_dir / "prometheus.yml"
        write_scrape_config(config, {}, scrape_interval_s)
        server = PrometheusServer(binary, config, work_dir / "tsdb", free_port(),
                                  work_dir / "prometheus.log")
        server.start()
        console.log(f"Prometheus {server.version} on {server.url} (config {config})")
        store = MetricsStore(PromQLSource(server), server, None, config, scrape_interval_s,
                             note=f"Prometheus {server.version}, scrape interval "
                                  f"{scrape_interval_s:g}s, config {config.name} rendered "
                                  "from manifests/monitoring/prometheus-local.yml")
        try:
            yield store
        finally:
            server.stop()
    else:
        console.log("[yellow]prometheus is not installed (`make prometheus`): scraping "
                    "/metrics directly with the fallback scraper[/]")
        scraper = FallbackScraper(scrape_interval_s)
        scraper.start()
        store = MetricsStore(scraper, None, scraper, None, scrape_interval_s,
                             note="Prometheus not installed: the harness scraped /metrics "
                                  f"itself every {scrape_interval_s:g}s (fallback scraper)")
        try:
            yield store
        finally:
            scraper.stop()



"""Fixtures shared by the harness tests."""

from __future__ import annotations

import prometheus_client as prom
import pytest

from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.processes import free_port


@pytest.fixture
def endpoint():
    """A real /metrics endpoint fed by the pipeline's own recorder, in its own registry."""
    registry = prom.CollectorRegistry()
    metrics = PipelineMetrics("inprocess", prometheus_instruments(registry))
    port = free_port()
    server, thread = prom.start_http_server(port, addr="127.0.0.1", registry=registry)
    yield metrics, f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join(5)

"""The orchestrating entry's HTTP surface on real HTTP, without its stage servers running.

`install_openai_routes` on a FastAPI app of its own (what it adds to KServe's), served by
uvicorn; every stage URL points at a loopback port nothing listens on, which is what the entry
sees when every stage is down. The routes that need no stage answer as on every stack; `/health`
is a 503 that names the first stage. With the stages up, tests/kserve_impl/test_orchestrated_e2e.py
checks the same surface on the real stack (and a stage stopped mid-module).
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from kserve_impl.orchestrator import PipelineModel
from kserve_impl.orchestrator_client import SERVICES
from kserve_impl.orchestrator_routes import install_openai_routes
from shared_pipeline.config import Settings
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.processes import free_port
from shared_pipeline.schemas import STAGES
from tests.kserve_impl.helpers import serve_in_thread


def entry_app() -> FastAPI:
    closed = f"http://127.0.0.1:{free_port()}"  # a free port: nothing answers there
    urls = {s: f"{closed}/v1/models/{s}:predict" for s in SERVICES}
    metrics = PipelineMetrics("kserve", prometheus_instruments(CollectorRegistry()))
    app = FastAPI()
    install_openai_routes(app, PipelineModel("pipeline", Settings(), metrics, urls))
    return app


def test_health_names_the_first_stage_that_is_not_ready() -> None:
    with serve_in_thread(entry_app()) as url:
        r = httpx.get(f"{url}/health", timeout=30)
    body = r.json()
    print(body)
    assert r.status_code == 503 and body["status"] == "unavailable"
    assert list(body["stages"]) == list(STAGES)
    assert all("unreachable" in why for why in body["stages"].values())
    assert body["error"]["type"] == "unavailable_error" and "'retrieve'" in body["error"]["message"]
    assert body["revision"]


def test_models_unknown_paths_and_wrong_methods_answer_as_every_stack() -> None:
    with serve_in_thread(entry_app()) as url:
        listed = [httpx.get(f"{url}{prefix}/models").json() for prefix in ("/v1", "/openai/v1")]
        missing = httpx.post(f"{url}/v1/nothing", json={})
        wrong = [httpx.get(f"{url}{path}") for path in ("/v1/chat/completions",
                                                         "/v1/completions",
                                                         "/openai/v1/completions")]
    for models in listed:
        assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["pipeline"]
        assert models["models"] == ["pipeline"]  # KServe's v1 model list, kept at /v1/models
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/nothing)"
    for r in wrong:
        assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"

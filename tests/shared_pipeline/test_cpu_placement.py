"""Two tiers' vLLM engines on one CPU host: the large one on the core vLLM's `auto` leaves free.

Pure functions and the two launchers' configs; no engine starts here (the measured start times
are in docs/results/startup-2026-12-02).
"""

from __future__ import annotations

import pytest

from kserve_impl.local import LocalStack
from kserve_impl.manifests import load_services
from rayserve_impl.serve_config import local_config
from shared_pipeline.config import Settings
from shared_pipeline.engines.cpu_placement import BIND_ENV, engine_placement_env


@pytest.fixture(autouse=True)
def _no_caller_binding(monkeypatch):
    monkeypatch.delenv(BIND_ENV, raising=False)


def test_only_the_large_tiers_vllm_engine_is_placed_on_the_last_core():
    assert engine_placement_env("large", "vllm", cpus=[0, 1]) == {BIND_ENV: "1"}
    assert engine_placement_env("large", "vllm", cpus=[3, 7, 5]) == {BIND_ENV: "7"}
    assert engine_placement_env("small", "vllm", cpus=[0, 1]) == {}  # vLLM's own `auto`
    assert engine_placement_env("large", "transformers", cpus=[0, 1]) == {}
    assert engine_placement_env("large", "vllm", cpus=[0]) == {}  # nothing to spread


def test_the_callers_binding_wins(monkeypatch):
    monkeypatch.setenv(BIND_ENV, "0-1")
    assert engine_placement_env("large", "vllm", cpus=[0, 1]) == {}


def _deployment_env(config: dict, name: str) -> dict:
    app = config["applications"][0]
    options = next(d for d in app["deployments"] if d["name"] == name)
    return options.get("ray_actor_options", {}).get("runtime_env", {}).get("env_vars", {})


def test_ray_local_config_places_generator_large_and_keeps_its_options():
    config = local_config(Settings(), 8000)
    expected = engine_placement_env("large", "vllm")
    assert _deployment_env(config, "generator-large") == expected
    assert _deployment_env(config, "generator-small") == {}
    large = next(d for d in config["applications"][0]["deployments"]
                 if d["name"] == "generator-large")
    assert large["ray_actor_options"]["num_cpus"] == 0.4  # merged, not replaced


def test_kserve_places_only_a_vllm_large_generator(tmp_path):
    services = {s.name: s for s in load_services()}
    # KServe's own engine, transformers, is never pinned
    default = LocalStack(Settings(), 0, log_dir=tmp_path)
    assert default.placement_env(services["generator-large"]) == {}
    parity = Settings.model_validate({"generate": {"engine": "vllm"}})
    stack = LocalStack(parity, 0, log_dir=tmp_path)
    assert stack.placement_env(services["generator-large"]) == engine_placement_env("large",
                                                                                     "vllm")
    assert stack.placement_env(services["generator-small"]) == {}
    assert stack.placement_env(services["retriever"]) == {}

"""The Serve config file, and the two documented ways it is adapted: cluster GPUs and local mode.

`manifests/rayserve/serve-config.yaml` is the one config. On a cluster, the RayService carries it
with `CLUSTER_OVERLAY` applied (each generator asks for a GPU on its tier's worker group) and the
cluster settings as the app's args (`GPU_CLUSTER_SETTINGS`), nothing else changed; a test proves
the manifest equals `cluster_config()`. Locally, `local_config` binds HTTP to loopback on the
chosen port and passes the caller's `Settings` as the builder's args, and places the large
tier's vLLM engine on its own core (`shared_pipeline.engines.cpu_placement`); tests may add
deployment overrides (e.g. a tiny queue to show backpressure).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shared_pipeline.cluster_settings import GPU_CLUSTER_SETTINGS
from shared_pipeline.config import Settings
from shared_pipeline.engines.cpu_placement import tier_placement_envs

MANIFEST_DIR = Path(__file__).resolve().parents[1] / "manifests" / "rayserve"
SERVE_CONFIG_PATH = MANIFEST_DIR / "serve-config.yaml"
RAYSERVICE_PATH = MANIFEST_DIR / "rayservice.yaml"
APP_NAME = "twinserve"

# The only differences between local and cluster: each generator replica gets one GPU (and the
# CPUs to feed it) on its own tier's GPU worker group (a custom resource only that group has: it
# mounts that tier's model at /mnt/models), and the app gets the cluster settings (model per
# tier, device, vLLM flags), the same ones the KServe stack loads. Everything else stays.
CLUSTER_OVERLAY: dict[str, dict[str, Any]] = {
    f"generator-{tier}": {"ray_actor_options": {"num_cpus": 2, "num_gpus": 1,
                                                "resources": {f"twinserve_{tier}": 1}}}
    for tier in ("small", "large")
}


def load_serve_config(path: Path = SERVE_CONFIG_PATH) -> dict[str, Any]:
    """The config as plain data (YAML anchors resolved into independent copies)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text())))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def with_deployment_overrides(config: dict[str, Any],
                              overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`config` with per-deployment option overrides merged in (deployments found by name)."""
    config = json.loads(json.dumps(config))
    app = config["applications"][0]
    by_name = {d["name"]: d for d in app["deployments"]}
    unknown = set(overrides) - set(by_name)
    if unknown:
        raise ValueError(f"no deployment named {sorted(unknown)} in the Serve config")
    app["deployments"] = [_merge(d, overrides.get(d["name"], {})) for d in app["deployments"]]
    return config


def cluster_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the RayService's serveConfigV2 must be: the config plus `CLUSTER_OVERLAY`, with
    `GPU_CLUSTER_SETTINGS` as the app's settings overrides."""
    config = with_deployment_overrides(config or load_serve_config(), CLUSTER_OVERLAY)
    app = config["applications"][0]
    app["args"] = {**app.get("args", {}), "settings": json.loads(json.dumps(
        GPU_CLUSTER_SETTINGS))}
    return config


def local_config(settings: Settings, port: int, *, config: dict[str, Any] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The config as local mode deploys it: loopback HTTP on `port`, the caller's settings,
    the generators placed on one host's cores (then the caller's `overrides`)."""
    placement = {f"generator-{tier}": {"ray_actor_options": {"runtime_env": {"env_vars": env}}}
                 for tier, env in tier_placement_envs(settings.generate, "rayserve").items()}
    config = with_deployment_overrides(config or load_serve_config(), placement)
    config = with_deployment_overrides(config, overrides or {})
    config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1",
                              "port": port}
    return with_settings(config, settings)


def with_settings(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`config` (changed in place, and returned) with `settings` as the app's builder args:
    how local mode passes its settings, and what a replica-restarting rollout changes."""
    app = config["applications"][0]
    app["args"] = {**app.get("args", {}), "settings": settings.model_dump(mode="json")}
    return config

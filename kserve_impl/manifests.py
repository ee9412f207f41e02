"""Reading `manifests/kserve/`: what local mode runs for each InferenceService, and the graph.

Local mode and a cluster read the same files: the `kserve-container`'s command and args become a
local process (only `python` and the `--http_port` value change), and `serviceName` resolves to
`/v1/models/<model name>:predict` on that process, as KServe's controller resolves it to the
InferenceService's address (`GetPredictorEndpoint`, v1 protocol).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "manifests" / "kserve"
GRAPH_FILE = "inferencegraph.yaml"
# The orchestrated topology's entry InferenceService, beside the same stage files.
ORCHESTRATED_DIR = "orchestrated"
STAGE_URL_ENV_PREFIX = "TWINSERVE_STAGE_URL_"
CONTAINER_NAME = "kserve-container"


@dataclass(frozen=True)
class ServiceManifest:
    """One InferenceService as local mode needs it."""

    name: str
    model_name: str
    command: tuple[str, ...]  # the container's command + args, verbatim
    path: Path

    def local_command(self, port: int) -> list[str]:
        """The same command line with this interpreter and `port` for `--http_port`."""
        argv = list(self.command)
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        for i, arg in enumerate(argv):
            if arg == "--http_port":
                argv[i + 1] = str(port)
            elif arg.startswith("--http_port="):
                argv[i] = f"--http_port={port}"
        return argv

    @property
    def stage(self) -> str:
        """The pipeline stage this InferenceService serves (its `--stage` argument)."""
        stage = _arg_value(list(self.command), "--stage")
        if stage is None:
            raise ValueError(f"{self.path}: InferenceService {self.name} has no --stage argument")
        return stage

    @property
    def tier(self) -> str | None:
        """The generator tier this InferenceService serves (`--tier`), None for other stages."""
        return _arg_value(list(self.command), "--tier")

    def predict_path(self) -> str:
        return f"/v1/models/{self.model_name}:predict"

    def ready_path(self) -> str:
        return f"/v1/models/{self.model_name}"


def stage_url_env(service: str) -> str:
    """The entry's environment variable for `service`'s `:predict` URL (the manifest sets it)."""
    return STAGE_URL_ENV_PREFIX + service.upper().replace("-", "_")


def iter_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _arg_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def service_from_manifest(doc: dict[str, Any], path: Path) -> ServiceManifest:
    name = doc["metadata"]["name"]
    containers = doc["spec"]["predictor"].get("containers") or []
    container = next((c for c in containers if c.get("name") == CONTAINER_NAME), None)
    if container is None:
        raise ValueError(f"{path}: InferenceService {name} has no {CONTAINER_NAME!r} container")
    argv = [*container.get("command", []), *container.get("args", [])]
    if not argv:
        raise ValueError(f"{path}: InferenceService {name} has no command")
    # KServe names the endpoint after --model_name, else after the InferenceService.
    model_name = _arg_value(argv, "--model_name") or name
    return ServiceManifest(name=name, model_name=model_name, command=tuple(argv), path=path)


def load_services(manifest_dir: Path = MANIFEST_DIR) -> list[ServiceManifest]:
    """Every InferenceService in the folder's top-level `*.yaml` files (not `cpu/`)."""
    services = [service_from_manifest(doc, path)
                for path in sorted(Path(manifest_dir).glob("*.yaml"))
                for doc in iter_documents(path) if doc.get("kind") == "InferenceService"]
    names = [s.name for s in services]
    if len(set(names)) != len(names):
        raise ValueError(f"{manifest_dir}: duplicate InferenceService names in {names}")
    return services

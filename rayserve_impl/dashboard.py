"""The Ray dashboard's Serve REST API, as `serve deploy`, `serve shutdown` and `serve status`
call it, with the cluster's auth token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rayserve_impl.serve_config import APP_NAME


@dataclass(frozen=True)
class Dashboard:
    """The Ray dashboard's Serve REST API: what `serve deploy` and `serve status` call."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def deploy(self, config: dict[str, Any]) -> None:
        """`serve deploy`: PUT the whole config (idempotent; in place where the change
        allows it, e.g. `user_config`)."""
        response = httpx.put(f"{self.url}/api/serve/applications/", json=config,
                             headers=self.headers, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"serve deploy refused ({response.status_code}): "
                               f"{response.text}")

    def delete(self, timeout_s: float = 60.0) -> None:
        """`serve shutdown`: delete every application (replicas shut down gracefully)."""
        httpx.delete(f"{self.url}/api/serve/applications/", headers=self.headers,
                     timeout=timeout_s)

    def status(self) -> dict[str, Any]:
        """`serve status` as JSON: applications, their deployments and replicas."""
        response = httpx.get(f"{self.url}/api/serve/applications/", headers=self.headers,
                             timeout=10)
        response.raise_for_status()
        return response.json()

    def app_status(self) -> tuple[str, dict[str, str], str]:
        """(application status, {deployment: status}, message) of the twinserve app."""
        app = (self.status().get("applications") or {}).get(APP_NAME) or {}
        deployments = {name: d.get("status", "") for name, d in
                       (app.get("deployments") or {}).items()}
        return app.get("status", "NOT_STARTED"), deployments, app.get("message", "")

    def is_healthy(self, config: dict[str, Any]) -> bool:
        """RUNNING, with every deployment `config` names present and HEALTHY."""
        status, deployments, _ = self.app_status()
        expected = {d["name"] for d in config["applications"][0]["deployments"]}
        return (status == "RUNNING" and set(deployments) >= expected
                and all(s == "HEALTHY" for s in deployments.values()))

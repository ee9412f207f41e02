"""The InferenceServices of one namespace through the Kubernetes API (the official `kubernetes`
client): get, merge-patch, list, and waiting until their status says what was asked.

Every rollout and rollback waits on status, not on a sleep. A wait that runs out raises
`TimeoutError` naming the ISVC, what it waited for and the status it last saw; an API error is a
`RuntimeError` naming the ISVC and carrying the API server's (or KServe webhook's) message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from kserve_impl.cluster.status import status_summary

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class Pending:
    """An ISVC a rollout or rollback waits on, until `check` passes on its status."""

    name: str
    what: str  # what is awaited, in words, for the timeout's message
    check: Callable[[dict[str, Any]], bool]


class InferenceServices:
    """The `serving.kserve.io/v1beta1` InferenceServices of `namespace`."""

    def __init__(self, custom: k8s.CustomObjectsApi, namespace: str, *, timeout_s: float,
                 poll_s: float) -> None:
        self.custom = custom
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def where(self, name: str) -> str:
        return f"InferenceService {self.namespace}/{name}"

    def get(self, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                            PLURAL, name)
        except ApiException as exc:
            raise RuntimeError(f"{self.where(name)}: GET failed ({exc.status} {exc.reason}): "
                               f"{exc.body}") from exc

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): lists are replaced whole, `None` deletes a field."""
        try:
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch, _content_type=MERGE_PATCH)
        except ApiException as exc:  # e.g. the KServe webhook refusing the spec
            raise RuntimeError(f"{self.where(name)}: patch refused ({exc.status} "
                               f"{exc.reason}): {exc.body}") from exc

    def list(self) -> dict[str, dict[str, Any]]:
        """Every ISVC of the namespace, by name."""
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return {i["metadata"]["name"]: i for i in listed.get("items", [])}

    def wait(self, pending: list[Pending]) -> dict[str, dict[str, Any]]:
        """Poll each ISVC until its check passes; one deadline for all of them."""
        deadline = time.monotonic() + self.timeout_s
        done: dict[str, dict[str, Any]] = {}
        for item in pending:
            while True:
                isvc = self.get(item.name)
                if item.check(isvc):
                    done[item.name] = isvc
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{self.where(item.name)}: gave up after {self.timeout_s:g}s waiting "
                        f"for {item.what}; last status: {status_summary(isvc)}")
                time.sleep(self.poll_s)
        return done

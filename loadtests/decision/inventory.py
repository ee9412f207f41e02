"""The inventory a team writes before choosing a serving layer (the seed page's five lines,
plus on-call and the requirements a run is checked against).

Validated strictly: a `<...>` placeholder left in, an unknown key or an unknown value is an
`InventoryError` whose message names the field, so a record is never built on a guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Owner = Literal["platform-team", "app-team"]
GraphComplexity = Literal["single-endpoint", "multi-step"]
RollbackUnit = Literal["resource", "runtime", "model", "prompt", "graph"]
AutoscalingOwner = Literal["gateway", "serving-layer", "runtime", "cluster"]
Oncall = Literal["kubernetes", "ray", "both"]
PLACEHOLDER = re.compile(r"<[^<>]*>")


class InventoryError(ValueError):
    """An inventory that cannot be decided on; the message names the field."""


class Requirements(BaseModel):
    """Every field optional; each one present is checked against the run."""

    model_config = ConfigDict(extra="forbid")
    streaming: bool | None = None
    load: str | None = Field(None, min_length=1, description="report phase, e.g. c4")
    ttft_p95_ms: float | None = Field(None, gt=0)
    e2e_p95_ms: float | None = Field(None, gt=0)
    time_to_restore_s: float | None = Field(None, ge=0)
    max_failed_during_rollback: int | None = Field(None, ge=0)
    max_overhead_ms: float | None = None

    @model_validator(mode="after")
    def _latency_needs_load(self) -> Requirements:
        latency = [n for n in ("ttft_p95_ms", "e2e_p95_ms") if getattr(self, n) is not None]
        if latency and self.load is None:
            raise ValueError(f"load is required by {', '.join(latency)} (the report phase the "
                             "latency limits apply to, e.g. c4)")
        return self

    def present(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Inventory(BaseModel):
    """One route's inventory, exactly the shape of issue 14 / docs/decision.md."""

    model_config = ConfigDict(extra="forbid")
    route: str = Field(min_length=1, pattern=r"\S")
    owner: Owner
    graph_complexity: GraphComplexity
    rollback_unit: list[RollbackUnit] = Field(min_length=1)
    autoscaling_owner: AutoscalingOwner
    oncall: Oncall
    requirements: Requirements = Field(default_factory=Requirements)

    @model_validator(mode="after")
    def _units_once(self) -> Inventory:
        if len(set(self.rollback_unit)) != len(self.rollback_unit):
            raise ValueError("rollback_unit names a unit twice")
        return self


def _placeholders(value: Any, path: str) -> list[str]:
    """Key paths whose value still holds a `<...>` placeholder from the seed page."""
    if isinstance(value, str):
        return [path] if PLACEHOLDER.search(value) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _placeholders(v, f"{path}.{k}" if path
                                                                   else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _placeholders(v, f"{path}[{i}]")]
    return []


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_inventory(data: Any, where: str = "inventory") -> Inventory:
    """Validate already-loaded YAML; every problem is reported with its field."""
    if not isinstance(data, dict):
        raise InventoryError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    if holes := _placeholders(data, ""):
        raise InventoryError(f"{where}: placeholder left in: {', '.join(holes)} (replace "
                             "each <...> with the route's real value)")
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "missing field"
            problems.append(f"{_field(err['loc'])}: {msg}")
        raise InventoryError(f"{where}: " + "; ".join(problems)) from None


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc}") from None
    return parse_inventory(data, str(path))

"""Scenarios from YAML files: `--scenario path.yaml` wherever a scenario name is accepted.

A file holds one `Scenario` (loadtests/scenarios.py) in the same schema as the shipped ones, so a
GPU cluster's larger rates and concurrencies live in a file of the user's, not in an edit of
`scenarios.py`. examples/scenarios/ holds the shipped `smoke` and `demo` exported this way.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from loadtests.scenarios import SCENARIOS, Scenario, get_scenario

YAML_SUFFIXES = (".yaml", ".yml")


class ScenarioFileError(ValueError):
    """A scenario file that cannot be read or does not match the schema; the message names
    the file and every offending field (`phases.1.users: Input should be greater than 0`)."""


def field_errors(exc: ValidationError) -> list[str]:
    """pydantic's errors as `dotted.field: message` lines."""
    return [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()]


def load_scenario_file(path: Path) -> Scenario:
    """The scenario a YAML file describes; `ScenarioFileError` naming the field when it is
    not one."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{path}: expected a mapping of scenario fields (name, "
                                f"description, phases, ...), got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioFileError(f"{path}: not a scenario:\n  " + "\n  ".join(
            field_errors(exc))) from None


def scenario_yaml(scenario: Scenario) -> str:
    """`scenario` as a YAML file `load_scenario_file` reads back to an equal object."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)


def is_scenario_path(value: str) -> bool:
    return value.endswith(YAML_SUFFIXES) or "/" in value


def resolve_scenario(value: str | Scenario | None) -> Scenario:
    """A shipped scenario by name, or one from a YAML file path; None is the default."""
    if isinstance(value, Scenario):
        return value
    if value is not None and value not in SCENARIOS and is_scenario_path(value):
        return load_scenario_file(Path(value))
    return get_scenario(value)

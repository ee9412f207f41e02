"""An experiment repeated N times (`--repeat N`): one result whose figures are the medians.

Every repeat keeps its own directory (`<kind>-<stack>/repeat-<i>/`, raw data and timeline); the
combined `<kind>-<stack>/result.json` is the first repeat's result with each numeric figure
replaced by its median across repeats, `figures_range` holding the median, min, max and n of
each, and `repeats` the per-repeat figures. Readers of `figures` (the report, the decision
record) thus read medians without knowing about repeats.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from loadtests.uncertainty import spread


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The combined result of `results` (one per repeat, same experiment and stack)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    keys = [k for k, v in first["figures"].items() if _numeric(v)
            or any(_numeric(r["figures"].get(k)) for r in results)]
    ranges = {k: spread([r["figures"].get(k) if _numeric(r["figures"].get(k)) else None
                         for r in results]) for k in keys}
    figures = {**first["figures"], **{k: ranges[k]["median"] for k in keys}}
    return {**first, "figures": figures, "figures_range": ranges,
            "repeats": [r["figures"] for r in results], "repeat_count": len(results)}


def write_combined(out: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the combined result (and the first repeat's timeline plot) into `out`."""
    combined = combine(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(combined, indent=2, default=str))
    first_plot = out / "repeat-1" / "timeline.png"
    if first_plot.exists():
        shutil.copyfile(first_plot, out / "timeline.png")
    return combined

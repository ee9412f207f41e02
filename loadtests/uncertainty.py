"""How sure a figure is: sample counts, bootstrap intervals, and the medians across repeats.

A p95 of 12 requests is one of the two slowest requests, not a tail; the report therefore shows
every percentile with its n and a bootstrap 95% interval, and no p95 below `MIN_SAMPLES[95]`
samples nor p99 below `MIN_SAMPLES[99]` ("n too small"). The bootstrap is seeded, so the same
records always give the same interval.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

MIN_SAMPLES = {50: 1, 90: 10, 95: 20, 99: 100}  # below this, the percentile is not shown
N_TOO_SMALL = "n too small"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 13
CONFIDENCE = 0.95


def shown(p: int, n: int) -> bool:
    """Whether a p-th percentile of n samples is a figure the report may show."""
    return n >= MIN_SAMPLES.get(p, 1)


def bootstrap_interval(values: list[float], p: float, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of the p-th percentile (numpy, seeded); None for fewer
    than two values (one value has no spread to resample)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.choice(data, size=(resamples, data.size), replace=True)
    stats = np.percentile(draws, p, axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def intervals(values: list[float], percentiles: tuple[int, ...]) -> dict[str, Any]:
    """{"p50": [low, high], ...} for the percentiles the n allows; None where it does not."""
    n = len(values)
    return {f"p{p}": (list(ci) if shown(p, n) and (ci := bootstrap_interval(values, p))
                      else None) for p in percentiles}


def spread(values: list[float | None]) -> dict[str, Any]:
    """Median and range of one figure across repeats (None entries are repeats without it)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(present), "min": min(present), "max": max(present),
            "n": len(present)}


def cell(dist: dict[str, Any], p: int, digits: int = 0) -> str:
    """A percentile for a table: `value [low–high]`, or "n too small (n=K)", or "n/a"."""
    value, n = dist.get(f"p{p}"), dist.get("n") or 0
    if n and not shown(p, n):
        return f"{N_TOO_SMALL} (n={n})"
    if value is None:
        return "n/a"
    ci = (dist.get("ci") or {}).get(f"p{p}")
    text = f"{value:,.{digits}f}"
    return f"{text} [{ci[0]:,.{digits}f}–{ci[1]:,.{digits}f}]" if ci else text

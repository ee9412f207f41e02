"""The soak's one figure: RSS and open fds per process, and request latency, over time.

    python -m loadtests.soak_plot DIR   # redraw DIR/soak.png from DIR/soak.json + raw/records.jsonl

A Ray stack has some 40 processes; a line each would bury the few that matter, so the panels
draw the `TOP` processes by peak RSS and one line for the sum of the rest.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from loadtests.results import load_records
from loadtests.soak_sampler import canonical

TOP = 8  # processes drawn one by one; the rest are summed into one line


def series(samples: list[dict[str, Any]], started: float
           ) -> dict[str, list[tuple[float, float, float]]]:
    """(seconds since start, RSS MiB, fds) per process, the `TOP` largest by peak RSS and the
    rest summed per sample as `other (N processes)`."""
    per: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for s in samples:
        for name, row in s["processes"].items():
            per[canonical(name)].append((s["t"] - started, row["rss_mib"], row["fds"]))
    ranked = sorted(per, key=lambda n: -max(p[1] for p in per[n]))
    shown = {n: per[n] for n in ranked[:TOP]}
    rest = ranked[TOP:]
    if rest:
        summed: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for name in rest:
            for t, rss, fds in per[name]:
                summed[t][0] += rss
                summed[t][1] += fds
        shown[f"other ({len(rest)} processes, summed)"] = [
            (t, v[0], v[1]) for t, v in sorted(summed.items())]
    return shown


def plot_soak(result: dict[str, Any], records: list[dict[str, Any]], started: float,
              path: Path) -> None:
    """Three panels sharing the time axis (seconds since the soak load began)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss, fds, lat) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    for name, points in series(result["samples"], started).items():
        t = [p[0] for p in points]
        rss.plot(t, [p[1] for p in points], label=name, lw=1)
        fds.plot(t, [p[2] for p in points], label=name, lw=1)
    ok = [(r["sent"] - started, r["e2e_ms"]) for r in records if r["ok"] and r["e2e_ms"]]
    bad = [r["sent"] - started for r in records if not r["ok"]]
    if ok:
        lat.scatter([p[0] for p in ok], [p[1] for p in ok], s=3, label="e2e (ok)")
    if bad:
        lat.scatter(bad, [0] * len(bad), s=8, c="red", marker="x", label="failed")
    window = result["drift"]["window_s"]
    duration = result["minutes"] * 60
    for x in (window, duration - window):
        lat.axvline(x, color="grey", ls=":", lw=1)
    rss.set_ylabel("RSS (MiB)")
    fds.set_ylabel("open fds")
    lat.set_ylabel("e2e (ms)")
    lat.set_xlabel("seconds since the soak load began (dotted: the first and last window)")
    rss.set_title(f"soak: {result['stack']} at {result['rate_rps']:.2f} req/s, "
                  f"{result['requests']} requests, {result['failures']} failed")
    for ax in (rss, fds, lat):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def redraw(out: Path) -> Path:
    """Draw `out/soak.png` again from what the soak kept (older results lack `started`: the
    first soak request's send time stands in)."""
    result = json.loads((out / "soak.json").read_text())
    records = [r for r in load_records(out / "raw" / "records.jsonl") if r["phase"] == "soak"]
    started = result.get("started") or min(r["sent"] for r in records)
    plot_soak(result, records, started, out / "soak.png")
    return out / "soak.png"


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["."]:
        print(redraw(Path(arg)))

"""The soak's one figure: RSS and open fds per process, and request latency, over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_soak(result: dict[str, Any], records: list[dict[str, Any]], started: float,
              path: Path) -> None:
    """Three panels sharing the time axis (seconds since the soak load began)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss, fds, lat) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    names = sorted({n for s in result["samples"] for n in s["processes"]})
    for name in names:
        points = [(s["t"] - started, s["processes"][name]) for s in result["samples"]
                  if name in s["processes"]]
        t = [p[0] for p in points]
        rss.plot(t, [p[1]["rss_mib"] for p in points], label=name, lw=1)
        fds.plot(t, [p[1]["fds"] for p in points], label=name, lw=1)
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
    lat.set_xlabel("seconds since the soak load began")
    rss.set_title(f"soak: {result['stack']} at {result['rate_rps']:.2f} req/s, "
                  f"{result['requests']} requests, {result['failures']} failed")
    for ax in (rss, fds, lat):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The comparison report's PNG plots (matplotlib, headless), one function per figure set.

Each plot reads the same results the tables do; a panel with nothing to draw says "no data"
rather than staying blank, so a missing series is visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests.scenarios import Scenario
from loadtests.tables import ms
from shared_pipeline.schemas import STAGES

Drawn = tuple[Any, str, str]  # figure, file name, caption
COLORS = {"inprocess": "#7f7f7f", "inprocess-vllm": "#bcbd22", "engine-alone": "#2ca02c",
          "kserve": "#1f77b4", "kserve-orchestrated": "#17becf", "rayserve": "#ff7f0e"}


def _error_bars(dists: list[dict[str, Any]], stat: str) -> tuple[list[float], list[list[float]]]:
    """Values and asymmetric error bars (the bootstrap 95% interval) of one percentile; a
    percentile the n does not allow is drawn as missing (NaN), not as a point."""
    values, low, high = [], [], []
    for d in dists:
        v, ci = d.get(stat), (d.get("ci") or {}).get(stat)
        if v is None or (ci is None and stat != "p50"):
            values.append(float("nan"))
            low.append(0.0)
            high.append(0.0)
            continue
        values.append(v)
        low.append(v - ci[0] if ci else 0.0)
        high.append(ci[1] - v if ci else 0.0)
    return values, [low, high]


def plots(out: Path, scenario: Scenario, per_stack: dict[str, Any]) -> list[tuple[str, str]]:
    """PNG files under out/plots; returns (file, caption) pairs in the report's order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    made: list[tuple[str, str]] = []
    for draw in (_concurrency, _stage_breakdown, _ttft_tpot, _queue_depth, _open_loop):
        drawn = draw(plt, scenario, per_stack)
        if drawn is None:
            continue
        fig, name, caption = drawn
        for ax in fig.axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        fig.savefig(plot_dir / name, dpi=110)
        plt.close(fig)
        made.append((f"plots/{name}", caption))
    return made


def _concurrency(plt: Any, scenario: Scenario, per_stack: dict[str, Any]) -> Drawn | None:
    """Latency and throughput per concurrency step."""
    conc = [p.name for p in scenario.phases if p.kind == "concurrency"]
    if conc:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for stack, r in per_stack.items():
            ps = [p for p in r["phases"] if p["phase"] in conc]
            x = [p["users"] for p in ps]
            c = COLORS.get(stack)
            for stat, style in (("p50", "o-"), ("p95", "s--")):
                values, bars = _error_bars([p["e2e_ms"] for p in ps], stat)
                axes[0].errorbar(x, values, yerr=bars, fmt=style, color=c, capsize=3,
                                 label=f"{stack} {stat} (95% CI)")
            axes[1].plot(x, [p["throughput_rps"] for p in ps], "o-", color=c, label=stack)
            axes[2].plot(x, [p["output_tokens_per_s"] for p in ps], "o-", color=c, label=stack)
        for ax, title, unit in ((axes[0], "End-to-end latency vs concurrency", "ms"),
                                (axes[1], "Throughput vs concurrency", "requests/s"),
                                (axes[2], "Output tokens/s vs concurrency", "tokens/s")):
            ax.set(title=title, xlabel="concurrent users", ylabel=unit)
            ax.grid(alpha=0.3)
        return (fig, "latency_throughput_vs_concurrency.png",
                "Client-side end-to-end latency (p50, p95; bars: bootstrap 95% interval; "
                "a p95 below 20 samples is not drawn) and throughput per concurrency step.")
    return None


def _stage_breakdown(plt: Any, scenario: Scenario, per_stack: dict[str, Any]) -> Drawn | None:
    """Per-stage and per-hop time, stacked per stack (runs with server-side figures only)."""
    stacks = [s for s, r in per_stack.items() if r.get("server")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    panels = ((axes[0], "stage_seconds", ("generate",), "Generate stage (mean, server)"),
              (axes[1], "stage_seconds", tuple(s for s in STAGES if s != "generate"),
               "Other stages (mean, server)"),
              (axes[2], "hop_seconds", STAGES, "Hop into each stage: queue + transport (mean)"))
    for ax, key, stages, title in panels:
        bottom = [0.0] * len(stacks)
        for stage in stages:
            vals = [ms(per_stack[s].get("server", {}).get(key, {}).get(stage, {})
                        .get("mean_s")) or 0.0 for s in stacks]
            ax.bar(stacks, vals, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set(title=title, ylabel="ms")
        ax.grid(alpha=0.3, axis="y")
    return (fig, "stage_and_hop_breakdown.png",
            "Per-stage time and per-hop time, whole run, from the pipeline_* histograms.")


def _ttft_tpot(plt: Any, scenario: Scenario, per_stack: dict[str, Any]) -> Drawn | None:
    """Client TTFT and TPOT per phase (streamed stacks)."""
    conc = [p.name for p in scenario.phases if p.kind == "concurrency"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for stack, r in per_stack.items():
        ps = [p for p in r["phases"] if p["phase"] in conc] or r["phases"]
        labels = [p["phase"] for p in ps]
        c = COLORS.get(stack)
        if any(p["ttft_ms"]["p50"] is not None for p in ps):
            for stat, style in (("p50", "o-"), ("p95", "s--")):
                values, bars = _error_bars([p["ttft_ms"] for p in ps], stat)
                axes[0].errorbar(labels, values, yerr=bars, fmt=style, color=c, capsize=3,
                                 label=f"{stack} {stat} (95% CI)")
        if any(p["tpot_ms"]["p50"] is not None for p in ps):
            values, bars = _error_bars([p["tpot_ms"] for p in ps], "p50")
            axes[1].errorbar(labels, values, yerr=bars, fmt="o-", color=c, capsize=3,
                             label=f"{stack} p50 (95% CI)")
    axes[0].set(title="Time to first token (client, streamed stacks)", ylabel="ms")
    axes[1].set(title="Time per output token (client, streamed stacks)", ylabel="ms")
    for ax in axes:
        ax.grid(alpha=0.3)
    caption = "TTFT and TPOT per phase, measured by the client."
    if "kserve" in per_stack:
        caption += " KServe answers whole through its graph: no client TTFT/TPOT for `kserve`."
    if "kserve-orchestrated" in per_stack:
        caption += " `kserve-orchestrated` streams through its entry InferenceService."
    return fig, "ttft_tpot.png", caption


def _queue_depth(plt: Any, scenario: Scenario, per_stack: dict[str, Any]) -> Drawn | None:
    """Generator queue depth and generate in-flight over the run."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for stack, r in per_stack.items():
        series = r.get("server", {}).get("series", {})
        t0 = r.get("server", {}).get("window", [0])[0]
        for tier, pts in sorted(series.get("queue_depth", {}).items()):
            axes[0].plot([t - t0 for t, _ in pts], [v for _, v in pts],
                         color=COLORS.get(stack), alpha=1 if tier == "small" else 0.5,
                         label=f"{stack} {tier}")
        inflight = series.get("inflight", {}).get("generate", [])
        axes[1].plot([t - t0 for t, _ in inflight], [v for _, v in inflight],
                     color=COLORS.get(stack), label=stack)
    axes[0].set(title="Generator queue depth over the run", xlabel="s since load start",
                ylabel="requests waiting")
    axes[1].set(title="Requests inside the generate stage", xlabel="s since load start",
                ylabel="in flight")
    for ax in axes:
        ax.grid(alpha=0.3)
    return (fig, "queue_depth_over_time.png",
            "pipeline_generation_queue_depth and pipeline_stage_inflight{stage=generate}, "
            "sampled from the metrics store; phases run back to back.")


def _open_loop(plt: Any, scenario: Scenario, per_stack: dict[str, Any]) -> Drawn | None:
    """Open-loop phases: achieved vs requested rate, and p95."""
    arrivals = [p.name for p in scenario.phases if p.kind != "concurrency"]
    if arrivals:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
        width = 0.8 / max(len(per_stack), 1)
        for i, (stack, r) in enumerate(per_stack.items()):
            ps = [p for p in r["phases"] if p["phase"] in arrivals]
            xs = [j + i * width for j in range(len(ps))]
            axes[0].bar(xs, [p["achieved_rps"] for p in ps], width, color=COLORS.get(stack),
                        label=f"{stack} achieved")
            values, bars = _error_bars([p["e2e_ms"] for p in ps], "p95")
            axes[1].bar(xs, values, width, yerr=bars, capsize=3, color=COLORS.get(stack),
                        label=stack)
        requested = [p.rate_rps for p in scenario.phases if p.kind != "concurrency"]
        for j, rate in enumerate(requested):
            axes[0].hlines(rate, j - 0.1, j + 0.9, colors="k", linestyles="dotted")
        for ax in axes:
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(arrivals))], arrivals)
            ax.grid(alpha=0.3, axis="y")
        axes[0].set(title="Open loop: achieved vs requested rate (dotted)", ylabel="requests/s")
        axes[1].set(title="Open loop: end-to-end p95 (95% CI; none below 20 samples)",
                    ylabel="ms")
        return (fig, "open_loop.png", "Constant and Poisson arrivals: the rate the client "
                "managed to send against the rate asked for, and latency.")
    return None

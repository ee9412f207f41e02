"""Experiment results as people read them: a timeline plot per run, and the report's section.

`plot_timeline(result, out)` draws `timeline.png` from the run's raw files (records and
timeline samples), so the picture shows exactly the data the figures were computed from.
`experiments_section(root)` renders every `*/result.json` under `root` as Markdown and HTML;
`add_to_report(report_dir)` puts that section into a comparison report (`make demo`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from loadtests import figures
from loadtests.emulation import emulated_notes, marked
from loadtests.report_sections import replace_section
from loadtests.results import load_records

SECTION_START = "<!-- experiments:start -->"
SECTION_END = "<!-- experiments:end -->"
ACTION_COLORS = {"rollout": "tab:orange", "rollback": "tab:green", "kill": "tab:red",
                 "replaced": "tab:green", "calibrated": "tab:gray", "overload": "tab:purple"}


def _timeline(out: Path) -> list[dict[str, Any]]:
    path = out / "timeline.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_timeline(result: dict[str, Any], out: Path) -> Path:
    """Three panels over wall-clock time since the run started: every response's latency at
    completion (coloured by revision; failures and refusals marked), errors per 5 s, and
    replicas + generation queue depth from the sampled timeline; actions as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = load_records(out / result["raw"]["records"])
    samples = [s for s in _timeline(out) if "replicas" in s]
    t0 = result["started"]
    fig, (lat, err, rep) = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1.2, 1.5]})
    revision_a = result.get("revision_a")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("ok"):
            key = "A " + str(revision_a) if r.get("revision") == revision_a else \
                f"B {r.get('revision')}"
        elif r.get("rejected"):
            key = "refused (503)"
        elif figures.is_cut(r):
            key = "stream cut"
        else:
            key = "failed"
        groups.setdefault(key, []).append(r)
    styles = {"refused (503)": ("tab:gray", "x"), "failed": ("tab:red", "x"),
              "stream cut": ("tab:purple", "v")}
    for key, rs in sorted(groups.items()):
        color, marker = styles.get(key, ("tab:blue" if key.startswith("A ") else "tab:orange",
                                         "o"))
        lat.scatter([figures.completed_at(r) - t0 for r in rs],
                    [(r.get("e2e_ms") or 0) / 1000 for r in rs], s=10, c=color, marker=marker,
                    label=f"{key} ({len(rs)})")
    lat.set_ylabel("e2e latency (s)")
    lat.set_title(f"{result['stack']} · {result['experiment']}"
                  + (f" · {result['change']['change']} revision, {result['change']['mode']}"
                     if result.get("change") else ""))
    lat.legend(fontsize=7, loc="upper left")

    if records:
        end = max(figures.completed_at(r) for r in records) - t0
        edges = [i * 5.0 for i in range(int(end // 5) + 2)]
        failed = [figures.completed_at(r) - t0 for r in records if not r.get("ok")]
        done = [figures.completed_at(r) - t0 for r in records]
        err.hist(done, bins=edges, color="tab:blue", alpha=0.35, label="responses / 5 s")
        err.hist(failed, bins=edges, color="tab:red", alpha=0.8, label="failed / 5 s")
        err.legend(fontsize=7, loc="upper left")
    err.set_ylabel("count")

    if samples:
        ts = [s["t"] - t0 for s in samples]
        rep.step(ts, [sum(s["replicas"].values()) for s in samples], where="post",
                 color="tab:green", label="replicas ready (sum)")
        tiers = sorted({k for s in samples for k in s.get("queue_depth", {})})
        for tier in tiers:
            rep.plot(ts, [s.get("queue_depth", {}).get(tier, 0) for s in samples],
                     label=f"queue depth {tier}", alpha=0.8)
        rep.legend(fontsize=7, loc="upper left")
    rep.set_ylabel("replicas / queue")
    rep.set_xlabel("seconds since the experiment started")

    for name, action in result["actions"].items():
        color = ACTION_COLORS.get(name, "black")
        for ax in (lat, err, rep):
            ax.axvline(action["started"] - t0, color=color, linestyle="--", linewidth=1)
            if action.get("finished", action["started"]) - action["started"] > 0.5:
                ax.axvspan(action["started"] - t0, action["finished"] - t0, color=color,
                           alpha=0.08)
        lat.annotate(name, (action["started"] - t0, 1.0), xycoords=("data", "axes fraction"),
                     fontsize=8, color=color, rotation=90, va="top", ha="right")
    fig.tight_layout()
    path = out / "timeline.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the report section
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}{unit}" if abs(value) >= 10 or unit == " s" else f"{value:.2f}{unit}"
    return f"{value}{unit}"


ROWS: dict[str, list[tuple[str, str, str]]] = {
    "rollback": [
        ("change", "change", ""), ("responses on B", "responses_on_b", ""),
        ("revision runs", "revision_runs", ""),
        ("rollout took", "rollout_took_s", " s"), ("time to detect", "time_to_detect_s", " s"),
        ("detected by", "detected_by", ""), ("rollback took", "rollback_took_s", " s"),
        ("time to restore", "time_to_restore_s", " s"),
        ("longest stall (no response)", "longest_stall_s", " s"),
        ("failed requests (all / in window)", "failed_pair", ""),
        ("cut streams", "cut_streams", ""), ("p99 in window", "p99_in_window_ms", " ms"),
        ("extra replicas", "extra_replicas", "")],
    "kill-replica": [
        ("target", "target", ""), ("failed after kill", "failed_after_kill", ""),
        ("cut streams", "cut_streams_after_kill", ""),
        ("time to recover (last failure)", "time_to_recover_s", " s"),
        ("replacement ready", "replacement_ready_s", " s"),
        ("longest stall (no response)", "longest_stall_s", " s"),
        ("served after recovery", "served_after_recovery", ""),
        ("p99 after kill", "p99_after_kill_ms", " ms")],
    "overload": [
        ("capacity (calibrated)", "capacity_rps", " req/s"),
        ("offered", "offered_rps", " req/s"), ("sent", "sent_rps", " req/s"),
        ("admitted / refused", "admitted_pair", ""),
        ("refused with a retry hint", "rejected_with_retry_after", ""),
        ("retry hint source", "retry_from", ""),
        ("refusal p50 / p99", "refusal_pair", ""), ("admitted p50 / p99", "admitted_pair_ms", ""),
        ("other failures", "other_failures", ""), ("served after", "served_after_pair", "")],
}


def _short(label: str | None) -> str:
    """`a-d515c447+b-2f59cc83` -> `a+b`: revision names without their hashes."""
    return "+".join(part.split("-")[0] for part in (label or "none").split("+"))


REVISION_NOTE = (
    "Revision names are `<revision_name>-<hash>` (shared_pipeline/revision.py): the 8-hex hash "
    "covers the package version, the generator checkpoint's key and every setting except "
    "`cache_dir` and `revision_name`, so revision B (`b-...`) differs from A (`a-...`) in "
    "exactly the settings its change lists. The same change gets the same hash on both stacks "
    "only when their settings are identical: each stack runs with its own `generate.engine` "
    "(KServe transformers, Ray vLLM, unless --engine-parity), which is part of the hash, so "
    "A's and B's hashes differ between the stacks while the names `a`/`b` and the change do "
    "not. Tables show the names without hashes.")


def _with_range(result: dict[str, Any], key: str, text: str, unit: str) -> str:
    """`text` plus the range across repeats when the experiment was repeated."""
    r = (result.get("figures_range") or {}).get(key)
    if not r or r["n"] < 2:
        return text
    return f"{text} (range {_fmt(r['min'], unit)}–{_fmt(r['max'], unit)}, n={r['n']})"


def _value(result: dict[str, Any], key: str, unit: str) -> str:
    return _with_range(result, key, _value_text(result, key, unit), unit)


def _value_text(result: dict[str, Any], key: str, unit: str) -> str:
    f = result["figures"]
    if key == "change":
        c = result.get("change") or {}
        return f"{c.get('change')} ({c.get('mode')}): {c.get('revision_change')}"
    if key == "revision_runs":
        runs = f.get("revision_runs") or []
        shown = " → ".join(f"{_short(label)}×{n}" for label, n in runs[:12])
        return shown + (" …" if len(runs) > 12 else "")
    if key == "failed_pair":
        return f"{f['failed']} / {f['failed_in_window']}"
    if key == "admitted_pair":
        return f"{f['admitted']} / {f['rejected']}"
    if key == "retry_from":
        return ", ".join(f"{k} {n}" for k, n in sorted(f.get("retry_after_from", {}).items())) \
            or "n/a"
    if key == "refusal_pair":
        return f"{_fmt(f['rejection_p50_ms'])} / {_fmt(f['rejection_p99_ms'])} ms"
    if key == "admitted_pair_ms":
        return f"{_fmt(f['admitted_p50_ms'])} / {_fmt(f['admitted_p99_ms'])} ms"
    if key == "served_after_pair":
        return f"{f['served_after']} of {f['asked_after']}"
    return _fmt(f.get(key), unit)


def load_results(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(root.glob("*/result.json"))]


def experiments_section(root: Path, base: Path) -> tuple[str, str]:
    """(Markdown, HTML) of every experiment under `root`; image paths relative to `base`."""
    runs = load_results(root)
    md = ["## Experiments: rollback, kill-replica, overload\n",
          "Each ran under steady locust load on one stack; every figure is computed from the "
          "run's `records.jsonl` and `timeline.jsonl` (definitions in docs/experiments.md). "
          "With `--repeat N` a figure is the median of N runs, with its range.\n",
          REVISION_NOTE + "\n"]
    parts = ["<h2>Experiments: rollback, kill-replica, overload</h2>",
             f"<p>{html.escape(REVISION_NOTE)}</p>"]
    for kind in ROWS:
        mine = [(d, r) for d, r in runs if r["experiment"] == kind]
        if not mine:
            continue
        header = ["figure", *[marked(r["stack"], r) + (f" ({r['change']['mode']})"
                                                       if r.get("change") else "")
                              for _, r in mine]]
        rows = [[label, *[_value(r, key, unit) for _, r in mine]] for label, key, unit in
                ROWS[kind]]
        md += [f"### {kind}\n", "| " + " | ".join(header) + " |",
               "|" + "---|" * len(header), *["| " + " | ".join(row) + " |" for row in rows], ""]
        parts += [f"<h3>{html.escape(kind)}</h3><table><thead><tr>",
                  *[f"<th>{html.escape(h)}</th>" for h in header], "</tr></thead><tbody>",
                  *["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in rows], "</tbody></table>"]
        notes = emulated_notes({r["stack"]: r for _, r in mine})
        md += [f"{note}\n" for note in notes]
        parts += [f"<p>{html.escape(note)}</p>" for note in notes]
        for directory, result in mine:
            image = (directory / "timeline.png").relative_to(base)
            caption = f"{result['stack']} {kind}: raw data in {directory.relative_to(base)}/"
            md += [f"![{caption}]({image})\n", caption + "\n"]
            parts.append(f"<figure><img src='{image}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(md), "\n".join(parts)


def add_to_report(report_dir: Path, root: Path | None = None) -> None:
    """Insert (or replace) the experiments section in `report.md` and `index.html`."""
    root = root or report_dir / "experiments"
    md, page = experiments_section(root, report_dir)
    for name, block, anchor in (("report.md", md, "## Environment"),
                                ("index.html", page, "<h2>Environment</h2>")):
        path = report_dir / name
        text = path.read_text() if path.exists() else ""
        path.write_text(replace_section(text, f"{SECTION_START}\n{block}\n{SECTION_END}\n",
                                        anchor, SECTION_START, SECTION_END))

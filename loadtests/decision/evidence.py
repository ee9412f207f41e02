"""A `twinserve compare` output dir read into typed figures.

Every figure carries the key path it was read from (`summary.json:stacks.kserve.streams`,
`experiments/rollback-kserve/result.json:figures.time_to_restore_s`), so each statement of the
record can be traced and tested against the file. A figure the report cannot give is a
`Missing` that says what was looked for and why it is not there: never a default.

Sources, most exact first: `raw/<stack>/result.json` (per phase, with sample counts),
`summary.json` (headline: the first and last concurrency phase only), `experiments/*/
result.json` (rollback, kill-replica, overload), `raw/promql.json` (every PromQL answer).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.references import metrics_label, scrape_job

CANDIDATES = ("kserve", "kserve-orchestrated", "rayserve")  # the reference is never one
REQUIRED_STACKS = ("kserve", "rayserve")  # a comparison without either cannot decide
REFERENCE = "inprocess"
MIN_P95_SAMPLES = 20  # below this a p95 is not a figure (issue 13: "n too small")


@dataclass(frozen=True)
class Figure:
    """One measured value and the key path it came from."""

    value: Any
    source: str
    note: str = ""


@dataclass(frozen=True)
class Missing:
    """Evidence a rule needs and the report lacks."""

    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.what}: {self.why}"


Evidence = Figure | Missing


class ReportError(ValueError):
    """The directory is not a comparison report."""


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def resolve(report_dir: Path, source: str) -> Any:
    """The value a figure's source names (`file:key.path[i]`): how tests check every number."""
    file, _, keys = source.partition(":")
    value = json.loads((Path(report_dir) / file).read_text())
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", keys):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


class Report:
    """The report dir's files, loaded once; figures on demand."""

    def __init__(self, report_dir: Path) -> None:
        self.dir = Path(report_dir)
        self.summary = _load(self.dir / "summary.json")
        if not isinstance(self.summary, dict) or "stacks" not in self.summary:
            raise ReportError(f"{self.dir}: no summary.json with `stacks` (not a `twinserve "
                              "compare` output)")
        self.stacks: dict[str, dict[str, Any]] = self.summary["stacks"]
        self.errors: dict[str, str] = self.summary.get("errors") or {}
        self.raw = {s: _load(self.dir / "raw" / s / "result.json") for s in self.stacks}
        self.promql: list[dict[str, Any]] | None = _load(self.dir / "raw" / "promql.json")
        self.experiments = [(p.parent.relative_to(self.dir).as_posix(), json.loads(p.read_text()))
                            for p in sorted(self.dir.glob("experiments/*/result.json"))]

    # ------------------------------------------------------------ stacks
    def candidates(self) -> list[str]:
        return [s for s in CANDIDATES if s in self.stacks]

    def not_run(self) -> list[Missing]:
        out = []
        for stack in REQUIRED_STACKS:
            if stack not in self.stacks:
                why = self.errors.get(stack, "summary.json:stacks has no entry for it")
                out.append(Missing(f"stack {stack}", f"not run ({why})"))
        return out

    def stack_figure(self, stack: str, key: str) -> Evidence:
        entry = self.stacks.get(stack)
        if entry is None:
            return Missing(f"{stack}.{key}", "the stack was not run")
        if entry.get(key) is None:
            return Missing(f"{stack}.{key}", f"summary.json:stacks.{stack}.{key} is null")
        return Figure(entry[key], f"summary.json:stacks.{stack}.{key}")

    # ------------------------------------------------------------ latency
    def latency_p95(self, stack: str, metric: str, phase: str) -> Evidence:
        """Client-side `metric` ("e2e" or "ttft") p95 at `phase`, exact where raw/ exists."""
        what = f"{stack} {metric.upper() if metric == 'ttft' else metric} p95 at {phase}"
        entry = self.stacks.get(stack)
        if entry is None:
            return Missing(what, "the stack was not run")
        if metric == "ttft" and entry.get("streams") is False:
            return Missing(what, f"{stack} does not stream (summary.json:stacks.{stack}.streams"
                                 " is false): there is no client TTFT")
        raw = self.raw.get(stack)
        if raw is not None:
            for i, p in enumerate(raw.get("phases", [])):
                if p.get("phase") != phase:
                    continue
                dist = p.get(f"{metric}_ms") or {}
                src = f"raw/{stack}/result.json:phases[{i}].{metric}_ms"
                if (dist.get("n") or 0) < MIN_P95_SAMPLES:
                    return Missing(what, f"{dist.get('n') or 0} samples ({src}.n), a p95 needs "
                                         f"at least {MIN_P95_SAMPLES}")
                return Figure(dist["p95"], f"{src}.p95", f"n={dist['n']}")
            return Missing(what, f"raw/{stack}/result.json has no phase {phase!r}")
        for level in ("low", "high"):
            if entry.get(f"{level}_load_phase") == phase:
                key = f"{metric}_p95_ms_{level}_load"
                if entry.get(key) is None:
                    return Missing(what, f"summary.json:stacks.{stack}.{key} is absent or null")
                return Figure(entry[key], f"summary.json:stacks.{stack}.{key}",
                              f"sample count not in summary.json (raw/{stack}/result.json "
                              "absent)")
        return Missing(what, f"summary.json has only the phases {entry.get('low_load_phase')} "
                             f"and {entry.get('high_load_phase')} for {stack}, and raw/{stack}/"
                             "result.json (every phase) is not in the report")

    def overhead(self, stack: str) -> Evidence:
        """e2e p50 of the stack minus the reference on the same engine (the summary's figure)."""
        what = f"{stack} overhead vs a same-engine reference"
        entry = self.stacks.get(stack)
        if entry is None:
            return Missing(what, "the stack was not run")
        figure = self.stack_figure(stack, "overhead_e2e_p50_ms_low_load")
        if isinstance(figure, Missing):
            return Missing(what, figure.why)
        ref_engine, ref_src = entry.get("overhead_reference_engine"), \
            f"summary.json:stacks.{stack}.overhead_reference_engine"
        if ref_engine is None and REFERENCE in self.stacks:
            ref_engine, ref_src = self.stacks[REFERENCE].get("engine"), \
                f"summary.json:stacks.{REFERENCE}.engine"
        if ref_engine != entry.get("engine"):
            return Missing(what, f"{stack} runs {entry.get('engine')} "
                                 f"(summary.json:stacks.{stack}.engine), the reference "
                                 f"{ref_engine} ({ref_src}): an engine difference, not serving "
                                 "cost; run `twinserve compare --engine-parity`")
        phase = entry.get("overhead_reference_phase") or entry.get("low_load_phase")
        return Figure(figure.value, figure.source, f"e2e p50 at {entry.get('low_load_phase')} "
                                                   f"against the reference's {phase}")

    # ------------------------------------------------------------ experiments
    def experiment(self, kind: str, stack: str, mode: str | None = None
                   ) -> tuple[str, dict[str, Any]] | None:
        """(dir, result) of the `kind` experiment on `stack` (with that rollout mode)."""
        for directory, result in self.experiments:
            if result.get("experiment") != kind or result.get("stack") != stack:
                continue
            if mode is None or (result.get("change") or {}).get("mode") == mode:
                return directory, result
        return None

    def experiment_figure(self, kind: str, stack: str, mode: str | None, key: str) -> Evidence:
        what = f"{stack} {kind}{f' ({mode})' if mode else ''} {key}"
        found = self.experiment(kind, stack, mode)
        if found is None:
            return Missing(what, f"no {kind} experiment{f' in mode {mode}' if mode else ''} "
                                 f"on {stack} under experiments/ (run `twinserve compare "
                                 f"--experiment {kind}` or `twinserve experiment {kind}"
                                 f"{f' --mode {mode}' if mode else ''} --stack {stack}`)")
        directory, result = found
        group, _, name = key.rpartition(".")  # "actions.rollout.detail" or a figure's name
        node: Any = result
        for part in (group.split(".") if group else ["figures"]):
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(name) if isinstance(node, dict) else None
        source = f"{directory}/result.json:{group or 'figures'}.{name}"
        if value is None:
            return Missing(what, f"{source} is absent or null")
        return Figure(value, source)

    # ------------------------------------------------------------ PromQL answers
    def returned_data(self, metric: str, stack: str) -> Evidence:
        """Whether a PromQL query for `metric` of `stack`'s run answered with any series: its
        `stack` label, and its own scrape job where the run has one (both KServe topologies
        carry stack="kserve"; only `job="kserve-orchestrated"` marks the orchestrated run's)."""
        what = f"PromQL {metric} for {stack}"
        if self.promql is None:
            return Missing(what, "raw/promql.json is not in the report (no Prometheus, or the "
                                 "raw/ folder was not kept)")
        label, job = f'stack="{metrics_label(stack)}"', scrape_job(stack)
        own_job = job != metrics_label(stack)

        def of_run(expr: str) -> bool:
            if f'job="{job}"' in expr:
                return True  # a query the harness scoped to this run's job
            return not own_job and 'job="' not in expr  # a stack-label-only query

        asked = [i for i, q in enumerate(self.promql)
                 if re.search(rf"\b{re.escape(metric)}(_bucket|_sum|_count)?\{{", q["expr"])
                 and label in q["expr"] and of_run(q["expr"])]
        if not asked:
            return Missing(what, "the harness did not query it in this run")
        answered = [i for i in asked
                    if ((self.promql[i].get("answer") or {}).get("data") or {}).get("result")]
        first = (answered or asked)[0]
        return Figure(bool(answered), f"raw/promql.json:[{first}].answer.data.result",
                      f"{len(answered)} of {len(asked)} queries returned series")

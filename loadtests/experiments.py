"""`twinserve experiment rollback|kill-replica|overload --stack S`: act on a stack under load.

Each experiment keeps locust's steady load on the stack (the same user as the benchmark, so
every response's revision, status, latency and stream state is recorded), acts at fixed points
and samples a timeline once a second (replicas, generation queue depth, in-flight per stage):

- rollback: load for `baseline_s`; roll out revision B (`--change`: benign = a new prompt
  template, bad = a post-processor failing `fail_ratio` of requests, slow = a generator
  `delay_ms` slower); let B serve `hold_s`; roll back to A; load `tail_s` more. On a slow
  box each phase goes on until it has its sample (A's answer, `hold_responses` off A, A's
  again), at most `recover_timeout_s` more. KServe (either topology) rolls out as a canary
  (`percent`% of each touched InferenceService's traffic, split by the entry: the graph runner
  or the orchestrator); Ray Serve by `serve deploy`, in place (`user_config`) or restarting
  replicas (app args).
- kill-replica: the same baseline; SIGKILL the process serving `target`; keep the load
  until the replacement is ready, then `tail_s` more.
- overload: a closed-loop calibration at `calibrate_users` measures capacity (completed
  requests/s); then open-loop arrivals at `overload_factor` x capacity for `overload_s`; then a
  few single requests check that the stack still serves.

`result.json` holds the plan, the actions with wall-clock times, the figures (loadtests.figures)
and where the raw data is: `records.jsonl` (locust, one line per request), `timeline.jsonl`,
locust's own CSV/JSON, the stack's logs. `timeline.png` plots it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from loadtests import figures, results, warmup
from loadtests.emulation import emulated_parts
from loadtests.experiment_plans import DEFAULT_MODE, KINDS, PLANS, Kind, Plan
from loadtests.experiment_repeats import write_combined
from loadtests.experiment_stacks import experiment_stack
from loadtests.locust_run import run_locust
from loadtests.scenarios import Scenario
from loadtests.shapes import STOP_FILE_ENV, ArrivalPhase, ConcurrencyPhase
from loadtests.stacks import StackHandle
from loadtests.timeline import Sampler
from shared_pipeline.config import Settings
from shared_pipeline.control import StackControl
from shared_pipeline.request_body import build_body


class Experiment:
    """One experiment on one running stack; `run()` returns the result it writes."""

    def __init__(self, kind: Kind, handle: StackHandle, control: StackControl, plan: Plan,
                 out: Path, console: Console) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown experiment {kind!r}; known: {', '.join(KINDS)}")
        self.kind, self.handle, self.control, self.plan = kind, handle, control, plan
        self.out, self.console = out, console
        self.actions: dict[str, dict[str, Any]] = {}
        self.change: dict[str, Any] | None = None  # rollback: what revision B changes, and how
        self.out.mkdir(parents=True, exist_ok=True)
        self.records_path = out / "records.jsonl"
        self.stop_file = out / "stop"
        for stale in (self.records_path, self.stop_file, out / "timeline.jsonl"):
            stale.unlink(missing_ok=True)

    def log(self, message: str) -> None:
        self.console.log(f"{self.handle.name} {self.kind}: {message}")

    def scenario(self, *phases) -> Scenario:
        return Scenario(name=f"experiment-{self.kind}", description=self.kind,
                        max_tokens=self.plan.max_tokens, warmup_requests=self.plan.warmup_requests,
                        phases=list(phases), stop_timeout_s=self.plan.stop_timeout_s)

    def act(self, name: str, do: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one action, stamping when it started and when it had taken effect."""
        self.log(f"{name} ...")
        started = time.time()
        outcome = do()
        self.actions[name] = {"started": started, "finished": time.time(), **outcome}
        self.log(f"{name} done in {time.time() - started:.1f}s: {outcome.get('detail', outcome)}")
        return self.actions[name]

    @contextlib.contextmanager
    def load(self, phase, stream: bool | None = None) -> Iterator[dict[str, Any]]:
        """Locust runs `phase` in a thread while the block acts; leaving the block ends the
        phase (stop file) and waits for locust to finish the requests in hand."""
        self.stop_file.unlink(missing_ok=True)
        window: dict[str, Any] = {}
        scenario = self.scenario(phase)

        def run() -> None:
            window.update(run_locust(self.handle, phase, scenario, self.out, stream=stream,
                                     extra_env={STOP_FILE_ENV: str(self.stop_file)}))

        thread = threading.Thread(target=run, name=f"locust-{phase.name}", daemon=True)
        thread.start()
        try:
            yield window
        finally:
            self.stop_file.touch()
            thread.join()
        if window.get("exit_code") not in (0, None):
            self.log(f"[yellow]locust exited {window['exit_code']} "
                     f"(see locust_{phase.name}.log)[/]")

    def records(self) -> list[dict[str, Any]]:
        return results.load_records(self.records_path)

    def run(self) -> dict[str, Any]:
        # answered whole, so each answer's `pipeline.revision` is at hand
        warm = warmup.warm_up(self.handle.url, self.handle.name, False, self.scenario(
            ConcurrencyPhase(name="warm-up", users=1, duration_s=1)), self.console)["answers"]
        revisions = {w["json"]["pipeline"]["revision"] for w in warm
                     if w["status"] == 200 and isinstance(w["json"], dict)}
        if len(revisions) > 1:
            raise RuntimeError(f"the stack answers with several revisions before any change: "
                               f"{sorted(revisions)}")
        self.revision_a = next(iter(revisions), None)
        started = time.time()
        with Sampler(self.control, self.out / "timeline.jsonl") as sampler:
            figures_ = {"rollback": self._rollback, "kill-replica": self._kill,
                        "overload": self._overload}[self.kind](sampler)
        timeline = sampler.samples  # complete: the sampler thread has stopped
        result = {
            "experiment": self.kind, "stack": self.handle.name, "engine": self.handle.engine,
            "streams": self.handle.streams, "url": self.handle.url,
            "emulated": emulated_parts(self.handle.name, self.handle.native is None, self.kind),
            "started": started, "ended": time.time(), "revision_a": self.revision_a,
            "plan": self.plan.model_dump(mode="json"), "change": self.change,
            "actions": self.actions,
            "figures": figures_, "warmup": [{k: w[k] for k in ("status", "seconds")}
                                            for w in warm],
            "raw": {"records": self.records_path.name, "timeline": "timeline.jsonl"},
            "timeline_samples": len(timeline),
        }
        (self.out / "result.json").write_text(json.dumps(result, indent=2, default=str))
        return result

    # ------------------------------------------------------------ the three experiments
    def _steady(self) -> ConcurrencyPhase:
        # The phase ends by the stop file; its duration is only a ceiling.
        return ConcurrencyPhase(name="steady", users=self.plan.users, duration_s=3600)

    def _serve_until_answered(self, seconds: float,
                              answered: Callable[[list[dict]], bool]) -> None:
        """Keep the load on `seconds`, then on (at most `recover_timeout_s` more) until the
        records are `answered`: on a slow box one answer can take longer than a phase of the
        plan, and an action before any answer of the phase leaves nothing to measure it by."""
        time.sleep(seconds)
        deadline = time.monotonic() + self.plan.recover_timeout_s
        while time.monotonic() < deadline and not answered(self.records()):
            time.sleep(0.5)

    def _baseline(self) -> None:
        """`baseline_s` of load, and on until A has answered a request."""
        self._serve_until_answered(self.plan.baseline_s, lambda records: any(
            figures.on_revision(r, self.revision_a) for r in records))

    def _hold(self) -> None:
        """B serves `hold_s`, and on until `hold_responses` requests completed off A after the
        rollout (on B in a stage, or failed): a revision failing a share p shows no failure
        in n requests with probability (1-p)^n, so a fixed hold on a slow box can miss it."""
        since = self.actions["rollout"]["finished"]
        self._serve_until_answered(self.plan.hold_s, lambda records: sum(
            1 for r in records if figures.completed_at(r) > since
            and not figures.on_revision(r, self.revision_a)) >= self.plan.hold_responses)

    def _tail(self) -> None:
        """`tail_s` more after the rollback, and on until a request sent after it was answered
        on A in every stage (the restore the figures time)."""
        since = self.actions["rollback"]["finished"]
        self._serve_until_answered(self.plan.tail_s, lambda records: any(
            r["sent"] > since and figures.on_revision(r, self.revision_a) for r in records))

    def _rollback(self, sampler: Sampler) -> dict[str, Any]:
        plan = self.plan
        change = plan.revision_b()
        mode = plan.mode or DEFAULT_MODE.get(self.handle.name, self.control.modes[0])
        self.change = {"change": plan.change, "mode": mode,
                       "revision_change": change.model_dump(exclude_none=True)}
        with self.load(self._steady()):
            self._baseline()
            self.act("rollout", lambda: self.control.rollout(change, mode, plan.percent))
            self._hold()
            self.act("rollback", self.control.rollback)
            self._tail()
        return figures.rollback_figures(self.records(), self.actions, sampler.samples,
                                        self.revision_a, plan.slo.model_dump())

    def _kill(self, sampler: Sampler) -> dict[str, Any]:
        plan = self.plan
        with self.load(self._steady()):
            self._baseline()
            killed = self.act("kill", lambda: self.control.kill(plan.target))
            self._wait_replaced(sampler, plan.target, killed["started"])
            self.actions["replaced"] = {"started": time.time(), "finished": time.time()}
            time.sleep(plan.tail_s)
        return figures.kill_figures(self.records(), self.actions, sampler.samples, plan.target)

    def _wait_replaced(self, sampler: Sampler, target: str, kill_at: float) -> None:
        """Until a sample after the kill shows `target` down and a later one shows it back
        (or, if the sampler never caught it down, it is up 30 s after the kill)."""
        deadline = kill_at + self.plan.recover_timeout_s
        seen_down = False
        while time.time() < deadline:
            sample = sampler.latest()
            count = (sample.get("replicas") or {}).get(target)
            if sample.get("t", 0) > kill_at and count is not None:
                seen_down |= count == 0
                if count >= 1 and (seen_down or time.time() > kill_at + 30):
                    self.log(f"{target} is back ({time.time() - kill_at:.1f}s after the kill)")
                    return
            time.sleep(0.5)
        self.log(f"[yellow]{target} not replaced after {self.plan.recover_timeout_s:.0f}s[/]")

    def _overload(self, sampler: Sampler) -> dict[str, Any]:
        plan = self.plan
        calibrate = ConcurrencyPhase(name="calibrate", users=plan.calibrate_users,
                                     duration_s=plan.calibrate_s)
        with self.load(calibrate) as window:
            time.sleep(plan.calibrate_s)
        calibration = [r for r in self.records() if r.get("phase") == "calibrate"]
        stats = results.phase_stats(calibration, calibrate, window["started"],
                                    window["load_ended"])
        capacity = stats["throughput_rps"]
        if capacity <= 0:
            raise RuntimeError("calibration completed no request: capacity unknown")
        rate = plan.overload_factor * capacity
        self.actions["calibrated"] = {"started": window["started"], "finished": time.time(),
                                      "capacity_rps": capacity, "offered_rps": rate}
        self.log(f"capacity {capacity:.2f} req/s; offering {rate:.2f} req/s")
        overload = ArrivalPhase(kind="poisson", name="overload", rate_rps=round(rate, 3),
                                duration_s=plan.overload_s, max_users=plan.overload_max_users,
                                seed=11)
        self.actions["overload"] = {"started": time.time()}
        with self.load(overload):
            time.sleep(plan.overload_s)
        self.actions["overload"]["finished"] = time.time()
        time.sleep(2)
        after = [self._ask_once() for _ in range(plan.after_requests)]
        return figures.overload_figures(self.records(), calibration, "overload", capacity, rate,
                                        after)

    def _ask_once(self) -> dict[str, Any]:
        body = build_body("What does the yield statement do?", self.plan.max_tokens, None,
                          stream=False)
        started = time.time()
        try:
            status = httpx.post(f"{self.handle.url}/v1/chat/completions", json=body,
                                timeout=180).status_code
        except httpx.HTTPError as exc:
            status = f"{type(exc).__name__}"
        return {"ok": status == 200, "status": status, "sent": started,
                "e2e_ms": (time.time() - started) * 1000}


def run_on(kind: Kind, handle: StackHandle, control: StackControl, plan: Plan, out: Path,
           console: Console) -> dict[str, Any]:
    """One experiment on an already running stack (tests run several on one start)."""
    result = Experiment(kind, handle, control, plan, out, console).run()
    from loadtests.experiment_report import plot_timeline

    plot_timeline(result, out)
    return result


def experiment(settings: Settings, kinds: Kind | list[Kind], stack: str, scenario: str,
               out: Path, console: Console, repeat: int = 1,
               running: contextlib.AbstractContextManager | None = None,
               **overrides: Any) -> list[dict[str, Any]]:
    """`twinserve experiment KIND... --stack S [--repeat N]`: start the stack once, run each
    experiment `repeat` times in order (results in `out/<kind>-<stack>/`, each repeat in
    `repeat-<i>/` and the medians beside them, loadtests.experiment_repeats), stop; the
    (combined) result dicts. `running` yields the (handle, control) of a stack already up
    instead: a deployment (loadtests.cluster_experiment) or the comparison's
    (loadtests.experiment_stacks.on_running)."""
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    plan = Plan.model_validate({**PLANS[scenario].model_dump(),
                                **{k: v for k, v in overrides.items() if v is not None}})
    out.mkdir(parents=True, exist_ok=True)
    done = []
    started_here = running is None
    running = running or experiment_stack(stack, settings, out / f"logs-{stack}")
    with running as (handle, control):
        console.log(f"{stack}: up in {handle.startup_s:.0f}s at {handle.url}" if started_here
                    else f"{stack}: reusing the stack already up at {handle.url}")
        for kind in kinds:
            target = out / f"{kind}-{stack}"
            if repeat == 1:
                done.append(run_on(kind, handle, control, plan, target, console))
                continue
            runs = [run_on(kind, handle, control, plan, target / f"repeat-{i + 1}", console)
                    for i in range(repeat)]
            done.append(write_combined(target, runs))
    return done

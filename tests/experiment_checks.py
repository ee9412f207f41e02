"""Checks both stacks' experiment tests make on a finished run: the figures must agree with
the raw data (locust's own failure count, the per-request records, the timeline files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from loadtests import figures
from loadtests.experiments import Plan
from loadtests.results import load_records
from shared_pipeline.config import Settings

TIERS = 2  # generator-small and generator-large, each with its own queue


def sized_for_overload(settings: Settings, plan: Plan) -> Settings:
    """Generators whose queue the overload's burst certainly overfills, whatever the machine.

    Each generator admits a running batch (`batch_max_size`, transformers) plus `max_queue`
    waiting requests, then refuses. With `max_queue = plan.users` the steady closed loop of the
    other experiments can never be refused (a user has one request out, so at most `users - 1`
    others wait when it asks), while the overload keeps up to `overload_max_users` requests in
    flight: more than both generators together can hold, so refusals do not depend on how much
    capacity the calibration happened to measure on a busy machine.
    """
    generate = settings.generate.model_copy(update={"max_queue": plan.users, "batch_max_size": 2})
    held = TIERS * (generate.batch_max_size + generate.max_queue)
    assert plan.overload_max_users > 2 * held, (plan.overload_max_users, held)
    return settings.model_copy(update={"generate": generate})


def locust_failures(out: Path) -> tuple[int, int]:
    """(requests, failures) of the chat rows in every locust JSON file of the run."""
    requests = failures = 0
    for path in out.glob("locust_*.json"):
        for row in json.loads(path.read_text()):
            if row["method"] != "LLM":  # the TTFT/TPOT pseudo-rows are not requests
                requests += row["num_requests"]
                failures += row["num_failures"]
    return requests, failures


def check_common(result: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """What every experiment must satisfy; returns the records."""
    records = load_records(out / "records.jsonl")
    f = result["figures"]
    assert records, "locust recorded no request"
    requests, failures = locust_failures(out)
    if result["experiment"] != "overload":  # overload's figures cover its overload phase only
        assert (f["requests"], f["failed"]) == (requests, failures) == (
            len(records), sum(1 for r in records if not r["ok"]))
    else:
        assert requests == len(records)
        assert failures == sum(1 for r in records if not r["ok"])
    assert (out / "timeline.png").stat().st_size > 10_000
    samples = [json.loads(line) for line in (out / "timeline.jsonl").read_text().splitlines()]
    assert len(samples) == result["timeline_samples"] > 5
    return records


def check_rollback(result: dict[str, Any], out: Path) -> None:
    records = check_common(result, out)
    f, a = result["figures"], result["revision_a"]
    assert a and a.startswith("a-")
    runs = [label for label, _ in f["revision_runs"]]
    # A first, B (in some stage of the answer) while it took traffic, A again at the end
    assert runs[0] == a and runs[-1] == a, runs
    assert any(label not in (a, "failed") and "b-" in label for label in runs), runs
    rollback_at = result["actions"]["rollback"]["started"]
    restored = rollback_at + f["time_to_restore_s"]
    after = [r for r in records if figures.completed_at(r) > restored]
    assert after and all(r["ok"] and r["revision"] == a for r in after)
    assert f["responses_on_a_after_restore"] == len(after)
    on_b = [r for r in records if r["ok"] and r["revision"] != a]
    assert f["responses_on_b"] == len(on_b) > 0


def check_kill(result: dict[str, Any], out: Path, url: str) -> None:
    records = check_common(result, out)
    f = result["figures"]
    kill_at = result["actions"]["kill"]["started"]
    assert result["actions"]["kill"]["pid"]
    failed_after = [r for r in records if not r["ok"] and figures.completed_at(r) >= kill_at]
    assert f["failed_after_kill"] == len(failed_after)
    assert f["served_after_recovery"] > 0
    assert f["replacement_ready_s"] is not None  # the sampler saw it gone and back
    # ... and the stack answers now
    body = {"model": "pipeline", "max_tokens": 4,
            "messages": [{"role": "user", "content": "What does the pass statement do?"}]}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).status_code == 200


def check_overload(result: dict[str, Any], out: Path) -> None:
    records = check_common(result, out)
    f = result["figures"]
    load = [r for r in records if r["phase"] == "overload"]
    refused = [r for r in load if r["rejected"]]
    assert f["rejected"] == len(refused) > 0, f["failure_reasons"]
    assert all(r["status"] == 503 and r["retry_after"] for r in refused)
    assert f["rejected_with_retry_after"] == len(refused)
    assert f["admitted"] == sum(1 for r in load if r["ok"]) > 0
    # Refused fast, not after a wait: a refusal skips the generator's queue and the generation
    # itself, which admitted requests pay. The figures are printed for the record.
    print(f"overload: rejection p50 {f['rejection_p50_ms']:.0f} ms, "
          f"admitted p50 {f['admitted_p50_ms']:.0f} ms")
    assert f["rejection_p50_ms"] < f["admitted_p50_ms"]
    assert f["served_after"] == f["asked_after"]
    assert f["offered_rps"] >= 2.9 * f["capacity_rps"]

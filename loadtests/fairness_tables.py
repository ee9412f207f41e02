"""Tables that show whether the comparison was fair: warm-up, the client/server join, where
each stack's queueing shows, and what the engine alone was given.

Rows only; report.py renders them with the other tables (loadtests.tables).
"""

from __future__ import annotations

from typing import Any

from loadtests.tables import Table, fmt, ms
from loadtests.uncertainty import cell

# Where waiting for the generator is counted, per stack (pipeline_hop_seconds is "previous stage
# exit to this stage entry"; pipeline_stage_seconds is inside the stage).
QUEUE_PLACE = {
    "kserve": ("generate stage: the transformers micro-batcher queues inside the generator "
               "server, after the hop"),
    "rayserve": ("hop into generate: the deployment handle queues a request until a replica has "
                 "a slot (max_ongoing_requests), before the stage starts; vLLM's own queue is "
                 "inside generate"),
    "inprocess": "generate stage: the engine's queue, inside the stage (no hop to wait in)",
}


def warmup_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "warm-up requests", "steady", "latency measured", "latencies (ms)"]
    rows = []
    for stack, r in per_stack.items():
        w = r.get("warmup")
        if not isinstance(w, dict):
            continue
        rows.append([stack, w["requests"], "yes" if w["steady"] else "no (hit the maximum)",
                     w["metric"], ", ".join(f"{v:.0f}" for v in w["latencies_ms"])])
    return header, rows


def join_table(per_stack: dict[str, Any]) -> Table:
    header = ["stack", "ok requests", "joined by request id", "server kept the sent id",
              "client − server p50 [95% CI]", "p95", "mean",
              "server span > client e2e (wall-clock step, left out)"]
    rows = []
    for stack, r in per_stack.items():
        j = r.get("join")
        if not j or not j["joined"]:
            continue
        d = j["client_minus_server_ms"]
        rows.append([stack, j["client_ok"], j["joined"], j["id_honoured"], cell(d, 50, 1),
                     cell(d, 95, 1), fmt(d["mean"], 1), j.get("clock_steps", 0)])
    return header, rows


def queue_table(per_stack: dict[str, Any]) -> Table:
    """Waiting for the generator, counted the same way for every stack: hop into generate plus
    time inside generate (whichever side of the boundary a stack queues on)."""
    header = ["stack", "where generator queueing shows", "hop into generate mean",
              "generate mean", "hop + generate mean", "max queue depth (sampled every)"]
    rows = []
    for stack, r in per_stack.items():
        server = r.get("server") or {}
        if not server:
            continue
        hop = (server.get("hop_seconds") or {}).get("generate", {}).get("mean_s")
        gen = (server.get("stage_seconds") or {}).get("generate", {}).get("mean_s")
        both = (hop or 0.0) + gen if gen is not None else None
        queue = [max(p.get("max_queue_depth", {}).values(), default=0)
                 for p in server.get("phases", {}).values()]
        period = server.get("queue_sample_period_s")
        place = next((v for k, v in QUEUE_PLACE.items() if stack.startswith(k)), "n/a")
        rows.append([stack, place, fmt(ms(hop), 1), fmt(ms(gen), 1), fmt(ms(both), 1),
                     f"{fmt(max(queue, default=None))} ({fmt(period, 0)} s)"])
    return header, rows


def queue_notes(per_stack: dict[str, Any]) -> list[str]:
    """What the reader must know to compare the queue figures."""
    if "rayserve" not in per_stack:
        return []
    return ["Queue depth is sampled at the same period for every stack (the column says which): "
            "Ray's replicas export their gauges only every 10 s (metrics_report_interval_ms), "
            "so every stack's gauge is read at 10 s steps; a 2 s burst between two samples is "
            "missed on every stack alike, and Ray's figure lags the work by up to 10 s.",
            "Queueing lands on different sides of the stage boundary (Ray's handle queue in "
            "the hop into generate, KServe's batcher queue inside generate): compare "
            "'hop + generate', not either part alone."]

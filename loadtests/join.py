"""Client and server records joined by request id: the time a request spends outside the stages.

The locust user sends a fresh `x-request-id` (uuid4) with every request and records it; each
answer names the server's `pipeline.request_id` and its stage timings. A server record is
`{request_id, server_ms: {stage: ms}, hop_ms}`; here they come from the answers themselves (the
stacks keep no server-side request log), but any source of that shape joins the same way.
client minus server = client e2e - (sum of stage times + hops between stages): what the proxy,
the HTTP layers and the transport to and from the first and last stage cost.

It cannot be negative: the server's span lies inside the client's. The stages stamp wall-clock
time across processes, the client a monotonic clock, so a request whose server span exceeds its
client e2e by more than CLOCK_STEP_MS saw the wall clock step (the 2026-12-02 demo's last 8 Ray
c8 requests: +16 s). Those are counted as `clock_steps` and left out of the distribution; the
Prometheus hop and stage figures of their phase carry the same step, and the report says so.
"""

from __future__ import annotations

from typing import Any

from loadtests.results import CLOCK_STEP_MS, distribution, server_total_ms

Record = dict[str, Any]


def server_records(client: list[Record]) -> list[Record]:
    """The server side of each answered request, as the answer reported it."""
    return [{"request_id": r["server_request_id"], "server_ms": r.get("server_ms") or {},
             "hop_ms": r.get("hop_ms") or 0.0}
            for r in client if r.get("server_request_id") and r.get("server_ms")]


def join(client: list[Record], server: list[Record]) -> dict[str, Any]:
    """Join successful client records to server records on the id the client sent.

    Returns how many joined, how many servers honoured the sent id (a stack that makes up its
    own id cannot be joined from a server-side log, only through the answer), and the
    distribution of client-minus-server time (ms) over the joined requests whose server span
    fits inside the client's (the others are `clock_steps`).
    """
    by_id = {s["request_id"]: s for s in server}
    ok = [r for r in client if r.get("ok") and r.get("e2e_ms") is not None]
    gaps: list[float] = []
    joined = steps = 0
    for r in ok:
        match = by_id.get(r.get("request_id"))
        if match is None:  # the server made up its own id: join through the answer instead
            match = by_id.get(r.get("server_request_id"))
        if match is None:
            continue
        joined += 1
        gap = r["e2e_ms"] - server_total_ms(match)
        if gap < -CLOCK_STEP_MS:
            steps += 1  # the server's wall clock stepped inside this request
        else:
            gaps.append(gap)
    honoured = sum(1 for r in ok if r.get("request_id") and
                   r.get("request_id") == r.get("server_request_id"))
    return {"client_ok": len(ok), "joined": joined, "id_honoured": honoured,
            "clock_steps": steps, "client_minus_server_ms": distribution(gaps)}


def join_stack(records: list[Record]) -> dict[str, Any]:
    """One stack's join, from its records.jsonl (the answers carry the server side)."""
    return join(records, server_records(records))

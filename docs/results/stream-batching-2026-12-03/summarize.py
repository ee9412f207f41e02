"""The README table from the runs' records.jsonl and result.json (client side per request).

`python summarize.py reports/stream-batching NAME...`: for each run, c1's per-request hop total
(the server's stamps: previous stage exit to next stage entry, summed over the request's hops)
as mean, p50 with its 95% bootstrap interval, and n; c1 e2e / TTFT / TPOT p50, chunks per
answer, c4 req/s, e2e p50 and TPOT p50.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from loadtests.uncertainty import bootstrap_interval


def figures(run: Path) -> dict[str, Any]:
    raw = next(p for p in (run / "raw").iterdir() if (p / "records.jsonl").exists())
    records = [json.loads(line) for line in (raw / "records.jsonl").read_text().splitlines()]
    result = json.loads((raw / "result.json").read_text())
    phases = {p["phase"]: p for p in result["phases"]}
    ok = {ph: [r for r in records if r["phase"] == ph and r["ok"]] for ph in ("c1", "c4")}
    hops = [r["hop_ms"] for r in ok["c1"] if r.get("hop_ms") is not None]
    ci = bootstrap_interval(hops, 50)
    c1, c4 = phases["c1"], phases["c4"]
    return {
        "c1_hop_total_ms": {"mean": round(statistics.mean(hops), 1),
                            "p50": round(statistics.median(hops), 1),
                            "p50_ci": [round(v, 1) for v in ci] if ci else None, "n": len(hops)},
        "c1_e2e_p50_ms": round(c1["e2e_ms"]["p50"]), "c1_ttft_p50_ms": round(c1["ttft_ms"]["p50"]),
        "c1_tpot_p50_ms": round(c1["tpot_ms"]["p50"], 1), "c1_n": c1["e2e_ms"]["n"],
        "chunks_per_answer": statistics.median(r["chunks"] for r in ok["c1"]),
        "c4_rps": round(c4["throughput_rps"], 3), "c4_e2e_p50_ms": round(c4["e2e_ms"]["p50"]),
        "c4_tpot_p50_ms": round(c4["tpot_ms"]["p50"], 1), "c4_n": c4["e2e_ms"]["n"],
        "failed": sum(p["failed"] + p["rejected"] for p in phases.values()),
        "startup_s": round(result["startup_s"]),
    }


if __name__ == "__main__":
    root = Path(sys.argv[1])
    print(json.dumps({name: figures(root / name) for name in sys.argv[2:]}, indent=1))

"""The README table from the two runs' result.json: c1 hops, c1 e2e/TTFT, c4 throughput."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HOPS = ("rerank", "generate", "postprocess", "route")


def row(result: dict[str, Any]) -> dict[str, Any]:
    """One config's figures: server-side hop means (ms) at c1, client percentiles."""
    phases = {p["phase"]: p for p in result["phases"]}
    hops = result["server"]["phases"]["c1"]["hop_seconds"]
    c1, c4 = phases["c1"], phases["c4"]
    return {
        "c1_hop_ms": {h: round(1000 * hops[h]["mean_s"], 1) for h in HOPS if h in hops},
        "c1_hop_total_ms": round(1000 * sum(v["mean_s"] for v in hops.values()), 1),
        "c1_hop_count": {h: round(v["count"], 1) for h, v in hops.items()},
        "c1_e2e_p50_ms": round(c1["e2e_ms"]["p50"]), "c1_ttft_p50_ms": round(c1["ttft_ms"]["p50"]),
        "c1_n": c1["e2e_ms"]["n"], "c1_failed": c1["failed"] + c1["rejected"],
        "c4_rps": round(c4["throughput_rps"], 3), "c4_e2e_p50_ms": round(c4["e2e_ms"]["p50"]),
        "c4_n": c4["e2e_ms"]["n"], "c4_failed": c4["failed"] + c4["rejected"],
        "startup_s": round(result["startup_s"]),
    }


if __name__ == "__main__":
    root = Path(sys.argv[1])
    rows = {name: row(json.loads((root / name / "raw" / "rayserve" / "result.json").read_text()))
            for name in sys.argv[2:] or ("default", "throughput")}
    print(json.dumps(rows, indent=1))

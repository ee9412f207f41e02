"""The hop benchmark: its payloads and statistics, and one tiny run of every transport.

The run is a smoke check of the benchmark itself (every row measured, figures positive, both
files written); it asserts no timing, since the figures are what the benchmark reports.
"""

from __future__ import annotations

import json

import pytest

from loadtests import bench_hops
from loadtests.hops.measure import percentile, summarize
from loadtests.hops.payloads import body_bytes, make_payload
from loadtests.hops.report import ROWS, add_over_floor


@pytest.mark.parametrize("size", [128, 1000, 1024, 1025, 10 * 1024, 100 * 1024])
def test_payload_encodes_to_exactly_its_size(size):
    payload = make_payload(size)
    assert len(body_bytes(payload)) == size
    assert payload["documents"] and all(d["text"] for d in payload["documents"])


def test_payload_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 128"):
        make_payload(64)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    stats = summarize([v / 1000 for v in values], wall_s=2.0)
    assert stats["n"] == 100 and stats["p50_ms"] == 50.0 and stats["rps"] == 50.0


def test_over_floor_reads_each_row_against_its_own_floor():
    rows = [{"row": "floor_http", "size": 1024, "concurrency": 1, "p50_ms": 1.0},
            {"row": "kserve_direct", "size": 1024, "concurrency": 1, "p50_ms": 3.5},
            {"row": "floor_ray_actor", "size": 1024, "concurrency": 1, "p50_ms": 2.0},
            {"row": "ray_handle", "size": 1024, "concurrency": 1, "p50_ms": 5.0},
            {"row": "ray_handle", "size": 1024, "concurrency": 8, "p50_ms": 9.0}]
    add_over_floor(rows)
    assert [r["over_floor_p50_ms"] for r in rows] == [0.0, 2.5, 0.0, 3.0, None]


@pytest.mark.slow
def test_tiny_run_measures_every_transport(tmp_path):
    sizes = [1024, 10 * 1024]
    bench_hops.main(["--n-c1", "5", "--n-c8", "8", "--warmup", "2",
                     "--sizes", ",".join(map(str, sizes)), "--out", str(tmp_path)])
    results = json.loads((tmp_path / "hops.json").read_text())
    cells = {(r["row"], r["size"], r["concurrency"]): r for r in results["rows"]}
    for row in ROWS:
        for size in sizes:
            for concurrency, n in ((1, 5), (8, 8)):
                r = cells[(row, size, concurrency)]
                assert r["n"] == n
                assert 0 < r["p50_ms"] <= r["p95_ms"] and r["rps"] > 0
                print(row, size, concurrency, r["p50_ms"], r["p95_ms"])
    hops = results["state_sizes"]["hops"]
    assert [h["after"] for h in hops][1:] == ["retrieve", "rerank", "route", "generate",
                                              "postprocess"]
    assert hops[1]["json_bytes"] > hops[0]["json_bytes"] > 0  # retrieval adds the passages
    assert hops[4]["json_bytes"] > hops[3]["json_bytes"]  # the prompt and the completion
    assert set(results["floors"]) == {"floor_http", "floor_ray_actor"}
    assert all(len(f) == len(sizes) * 2 for f in results["floors"].values())
    page = (tmp_path / "hops.md").read_text()
    assert all(f"| {row} |" in page for row in ROWS)

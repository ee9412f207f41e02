"""The report's hop section reads against the hop benchmark's floor: the newest kept result (or
`$TWINSERVE_HOPS_RESULT`), at the payload closest to the real state, with n; KServe rows against
the HTTP floor and a direct ModelServer hop, Ray rows against the actor floor and a handle hop.
Without a result the report says how to make one. Hand-made hop results, the real writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests import host, report
from loadtests.hop_floor import (
    HOPS_ENV,
    MAKE_ONE,
    TITLE,
    find_result,
    hop_floor,
    load_floor,
    payload_size,
)
from shared_pipeline.config import Settings
from tests.loadtests.test_report import SCENARIO, fake_result

HOP_TITLE = report.HOP_TITLE
# (row, c1 p50 at 1 KB); 10 KB adds 1 ms, c8 adds 10 ms: distinct figures per cell
BASE = {"floor_http": 0.5, "kserve_direct": 0.9, "kserve_graph": 2.0, "floor_ray_actor": 1.5,
        "ray_handle": 3.5}


def hops_json(folder: Path, date: str, with_states: bool = True) -> Path:
    rows = [{"row": row, "size": size, "concurrency": c, "n": 200 if c == 1 else 400,
             "p50_ms": base + (size == 10240) + 10 * (c == 8),
             "p95_ms": base + (size == 10240) + 10 * (c == 8) + 0.25}
            for row, base in BASE.items() for size in (1024, 10240) for c in (1, 8)]
    result = {"date": date, "environment": {"cpus": 2}, "sizes": [1024, 10240], "rows": rows}
    if with_states:  # request, three between stages, the answer: median of the middle 9500
        result["state_sizes"] = {"hops": [{"json_bytes": b} for b in
                                          (550, 7800, 9500, 13900, 14400)]}
    folder.mkdir(parents=True)
    (folder / "hops.json").write_text(json.dumps(result))
    return folder / "hops.json"


def write(out: Path, floor: dict) -> str:
    per_stack = {"inprocess": fake_result("inprocess", 1000.0, True, "transformers"),
                 "kserve": fake_result("kserve", 1100.0, False, "transformers"),
                 "rayserve": fake_result("rayserve", 900.0, True, "vllm")}
    env = host.environment(Settings(), per_stack, "fallback scraper")
    report.write_report(out, SCENARIO, per_stack, env, {}, floor=floor)
    return (out / "report.md").read_text()


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_newest_kept_result_is_read(tmp_path) -> None:
    hops_json(tmp_path / "hops-2026-11-30", "2026-11-30 10:00 UTC")
    newest = hops_json(tmp_path / "hops-2026-12-01", "2026-12-01 21:37 UTC")
    hops_json(tmp_path / "hops-by-hand", "2026-12-01 08:00 UTC")  # older by its date
    (tmp_path / "hops-broken").mkdir()
    (tmp_path / "hops-broken" / "hops.json").write_text("{")
    assert find_result(tmp_path, env={})[0] == newest


def test_the_path_setting_wins(tmp_path) -> None:
    hops_json(tmp_path / "kept" / "hops-2026-12-01", "2026-12-01 21:37 UTC")
    mine = hops_json(tmp_path / "mine", "2026-01-01 00:00 UTC")
    assert find_result(tmp_path / "kept", env={HOPS_ENV: str(mine.parent)})[0] == mine
    assert find_result(tmp_path / "kept", env={HOPS_ENV: str(mine)})[0] == mine
    missing = hop_floor(tmp_path / "kept", env={HOPS_ENV: str(tmp_path / "nope.json")})
    assert not missing["found"] and HOPS_ENV in missing["looked_for"]


def test_the_payload_is_the_size_closest_to_the_state_between_stages(tmp_path) -> None:
    with_states = json.loads(hops_json(tmp_path / "a", "d").read_text())
    assert payload_size(with_states) == 10240
    without = json.loads(hops_json(tmp_path / "b", "d", with_states=False).read_text())
    assert payload_size({**without, "sizes": [1024, 10240, 102400]}) == 10240  # the middle


@pytest.fixture(scope="module")
def with_floor(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("hops")
    floor = load_floor(hops_json(root / "hops-2026-12-01", "2026-12-01 21:37 UTC"))
    out = tmp_path_factory.mktemp("report")
    return out, write(out, floor)


def test_every_hop_row_reads_against_its_own_floor(with_floor) -> None:
    _, md = with_floor
    text = section(md, HOP_TITLE)
    print(text)
    rows = {line.split(" | ")[0].strip("| †"): line for line in text.splitlines()
            if line.startswith("| ")}
    assert "floor p50 (10 KB, bench_hops)" in rows["stack"]
    # 10 KB: base + 1 ms at c1, + 10 more at c8
    assert rows["kserve"].endswith(
        "| c1: HTTP floor 1.50, KServe direct 1.90; c8: HTTP floor 11.50, KServe direct 11.90 |")
    assert rows["rayserve"].endswith(
        "| c1: Ray actor floor 2.50, handle 4.50; c8: Ray actor floor 12.50, handle 14.50 |")
    assert rows["inprocess"].endswith("| n/a (no transport) |")
    assert "a 10 KB payload" in text and "7,800-13,900 bytes of JSON" in text
    assert "2026-12-01 21:37 UTC, 2 CPUs" in text


def test_the_floor_table_gives_payload_and_n(with_floor) -> None:
    out, md = with_floor
    text = section(md, TITLE)
    assert ("| KServe hops | floor: bare uvicorn ASGI echo, httpx loopback POST | floor_http "
            "| 10 KB | 1.50 / 1.75 | 200 | 11.50 / 11.75 | 400 |") in text
    assert ("| Ray Serve hops | Ray DeploymentHandle, default options (by reference) "
            "| ray_handle | 10 KB | 4.50 / 4.75 | 200 | 14.50 / 14.75 | 400 |") in text
    assert "kserve_graph" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hop_floor"]["rows"]["ray_handle"]["1"]["n"] == 200
    assert "bench_hops" in (out / "index.html").read_text()


def test_without_a_result_the_report_says_how_to_make_one(tmp_path) -> None:
    floor = hop_floor(tmp_path / "empty", env={})
    md = write(tmp_path, floor)
    text = section(md, HOP_TITLE)
    assert f"Make one with `{MAKE_ONE}`" in text and "docs/results/hops-<date>/" in text
    assert "floor p50" not in text and TITLE not in md

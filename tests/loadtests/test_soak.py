"""The soak benchmark's arithmetic: windows, drift, per-process start/end (no stack needed)."""

from __future__ import annotations

from loadtests.soak import drift, parse_args, per_process, summarise
from loadtests.soak_plot import TOP, series
from loadtests.soak_sampler import canonical, label


def record(sent: float, e2e_ms: float, ok: bool = True) -> dict:
    return {"sent": sent, "e2e_ms": e2e_ms, "ok": ok, "error": None if ok else "503 overloaded",
            "status": 200 if ok else 503}


def test_a_short_run_compares_its_first_and_last_fifth() -> None:
    records = [record(100 + t, 1000 + 10 * t) for t in range(100)]
    d = drift(records, started=100, duration_s=100)
    assert d["window_s"] == 20
    assert (d["first"]["requests"], d["last"]["requests"]) == (20, 20)
    assert d["p50_drift_ms"] == 800  # p50 of 0..19 is 9.5 -> 1095; of 80..99 is 89.5 -> 1895


def test_a_long_run_compares_five_minute_windows_and_counts_failures() -> None:
    records = [record(float(t), 500.0, ok=t % 10 != 0) for t in range(1800)]
    s = summarise(records, started=0, duration_s=1800)
    assert s["drift"]["window_s"] == 300
    assert (s["requests"], s["failures"]) == (1800, 180)
    assert s["failure_reasons"] == {"503 overloaded": 180}


def test_per_process_keeps_start_end_and_peak() -> None:
    samples = [{"t": 0, "processes": {"a[1]": {"rss_mib": 100.0, "fds": 10.0}}},
               {"t": 5, "processes": {"a[1]": {"rss_mib": 150.0, "fds": 12.0},
                                      "b[2]": {"rss_mib": 50.0, "fds": 4.0}}},
               {"t": 10, "processes": {"a[1]": {"rss_mib": 120.0, "fds": 11.0}}}]
    rows = per_process(samples)
    assert rows["a[1]"] == {"rss_start_mib": 100.0, "fds_start": 10.0, "rss_peak_mib": 150.0,
                            "rss_end_mib": 120.0, "fds_end": 11.0}
    assert rows["b[2]"]["rss_end_mib"] == 50.0


def test_the_command_line() -> None:
    args = parse_args(["--stack", "inprocess", "--minutes", "2"])
    assert (args.stack, args.minutes, args.rate, args.load_share) == ("inprocess", 2.0, None, 0.7)


def test_a_ray_worker_keeps_one_name_whatever_task_it_runs() -> None:
    # Ray renames a worker's process title per task; one replica must stay one line
    replica = "ray::ServeReplica:twinserve:ingress"
    assert label([], f"{replica}.handle_request_with_rejection", 7) == f"{replica}[7]"
    assert label([], replica, 7) == f"{replica}[7]"
    assert canonical(f"{replica}.handle_request_with_rejection[7]") == f"{replica}[7]"
    assert canonical("kserve_impl.graph[9]") == "kserve_impl.graph[9]"
    samples = [{"t": 0.0, "processes": {f"{replica}.listen[7]": {"rss_mib": 10.0, "fds": 3.0}}},
               {"t": 5.0, "processes": {f"{replica}[7]": {"rss_mib": 12.0, "fds": 4.0}}}]
    assert per_process(samples) == {f"{replica}[7]": {
        "rss_start_mib": 10.0, "fds_start": 3.0, "rss_peak_mib": 12.0, "rss_end_mib": 12.0,
        "fds_end": 4.0}}


def test_a_kserve_server_is_named_by_the_stage_it_serves() -> None:
    cmd = ["python", "-m", "kserve_impl.server", "--stage", "generator", "--tier", "small"]
    assert label(cmd, "python", 3) == "kserve_impl.server:generator-small[3]"
    assert label(["/usr/bin/raylet", "--x"], "raylet", 4) == "raylet[4]"


def test_the_plot_draws_the_largest_processes_and_sums_the_rest() -> None:
    procs = {f"p{i}[{i}]": {"rss_mib": float(i), "fds": 1.0} for i in range(TOP + 3)}
    lines = series([{"t": 10.0, "processes": procs}, {"t": 15.0, "processes": procs}], 10.0)
    assert len(lines) == TOP + 1
    assert f"p{TOP + 2}[{TOP + 2}]" in lines and "p0[0]" not in lines
    assert lines["other (3 processes, summed)"] == [(0.0, 3.0, 3.0), (5.0, 3.0, 3.0)]

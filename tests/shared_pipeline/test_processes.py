"""The process toolkit: ports, child environments, group kill, readiness, parent death, watchdog.

Every test starts real processes (small Python one-liners) and checks what the OS reports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from shared_pipeline.config import Settings
from shared_pipeline.processes import (
    LOOPBACK,
    ManagedProcess,
    ProcessError,
    child_env,
    free_port,
    wait_all_ready,
)

REPO = Path(__file__).resolve().parents[2]
# A child that starts a grandchild in its own process group, prints both pids, and waits.
PARENT_OF_ONE = ("import subprocess, sys, time; "
                 "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
                 "print(g.pid, flush=True); time.sleep(300)")


def gone(pid: int, within_s: float = 20.0) -> bool:
    """True once `pid` has exited (zombies count as gone: they run nothing)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def read_pids(path: Path, count: int, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        words = path.read_text().split() if path.exists() else []
        if len(words) >= count:
            return [int(w) for w in words[:count]]
        time.sleep(0.1)
    raise AssertionError(f"{path} never held {count} pids: {path.read_text()!r}")


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))
    assert 1024 < port < 65536


def test_child_env_carries_settings_and_drops_other_twinserve_variables(tmp_path, monkeypatch):
    settings = Settings().model_copy(update={"revision_name": "r-test"})
    monkeypatch.setenv("TWINSERVE_GENERATE__DEFAULT_MAX_TOKENS", "7")  # stale: must not pass
    env = child_env(settings, tmp_path / "s.yaml", extra={"X_EXTRA": "1"})
    assert env["TWINSERVE_CONFIG"] == str(tmp_path / "s.yaml")
    assert [k for k in env if k.startswith("TWINSERVE_")] == ["TWINSERVE_CONFIG"]
    assert env["X_EXTRA"] == "1" and env["PATH"] == os.environ["PATH"]
    assert yaml.safe_load((tmp_path / "s.yaml").read_text())["revision_name"] == "r-test"
    out = subprocess.run(
        [sys.executable, "-c", "from shared_pipeline.config import Settings; "
                               "print(Settings().model_dump_json())"],
        env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == json.loads(settings.model_dump_json())


def test_stop_kills_the_whole_process_group(tmp_path):
    proc = ManagedProcess("parent", [sys.executable, "-c", PARENT_OF_ONE], tmp_path / "p.log")
    proc.start()
    (grandchild,) = read_pids(tmp_path / "p.log", 1)
    assert os.getpgid(grandchild) == proc.pid  # its own session, one group
    assert os.getsid(proc.pid) == proc.pid
    started = time.perf_counter()
    proc.stop(grace_s=5)
    print(f"stopped in {time.perf_counter() - started:.2f}s")
    assert proc.exit_code() is not None
    assert gone(grandchild)


def test_readiness_failure_carries_the_log_tail(tmp_path):
    proc = ManagedProcess("crasher", [sys.executable, "-c",
                                      "print('model file missing', flush=True); exit(3)"],
                          tmp_path / "c.log", ready_url=f"http://{LOOPBACK}:{free_port()}/")
    proc.start()
    with pytest.raises(ProcessError) as err:
        proc.wait_ready(timeout_s=30)
    assert "exited with code 3" in str(err.value)
    assert "model file missing" in str(err.value)


def test_readiness_timeout_names_the_process_and_stops_nothing_else(tmp_path):
    proc = ManagedProcess("sleeper", [sys.executable, "-c", "print('loading', flush=True);"
                                      "import time; time.sleep(60)"],
                          tmp_path / "s.log", ready_url=f"http://{LOOPBACK}:{free_port()}/")
    proc.start()
    try:
        with pytest.raises(ProcessError, match="sleeper not ready after 1s") as err:
            wait_all_ready([proc], timeout_s=1)
        assert "loading" in str(err.value)
    finally:
        proc.stop(grace_s=5)


def test_readiness_succeeds_on_http_200(tmp_path):
    port = free_port()
    proc = ManagedProcess("http", [sys.executable, "-m", "http.server", "--bind", LOOPBACK,
                                   str(port)], tmp_path / "h.log",
                          ready_url=f"http://{LOOPBACK}:{port}/", cwd=tmp_path)
    proc.start()
    ready = []
    try:
        wait_all_ready([proc], timeout_s=30, on_ready=ready.append)
        assert ready == [proc] and proc.ready_after_s is not None
    finally:
        proc.stop(grace_s=5)


LAUNCHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from shared_pipeline.processes import ManagedProcess
    out = Path(sys.argv[1])
    child = ManagedProcess("child", [sys.executable, "-c", sys.argv[2]], out / "child.log",
                           guard=sys.argv[3] == "guard")
    child.start()
    extra = sys.argv[4:]
    if extra:
        from shared_pipeline.watchdog import watchdog
        watchdog().guard_marker(extra[0])
        watchdog().guard_command("touch", ["touch", str(out / "cleaned")])
    (out / "launcher.pid").write_text(str(child.pid))
    time.sleep(300)
""")


def start_launcher(tmp_path: Path, child_code: str, guard: bool, *extra: str
                   ) -> tuple[subprocess.Popen, int]:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path), child_code,
         "guard" if guard else "noguard", *extra],
        env={**os.environ, "PYTHONPATH": str(REPO)})
    (child,) = read_pids(tmp_path / "launcher.pid", 1)
    return launcher, child


def test_a_child_dies_with_its_sigkilled_launcher(tmp_path):
    """PR_SET_PDEATHSIG alone (no watchdog): the direct child goes when the launcher does."""
    launcher, child = start_launcher(tmp_path, "import time; time.sleep(300)", guard=False)
    assert not gone(child, within_s=0.5)
    launcher.kill()
    launcher.wait()
    assert gone(child)


def test_the_watchdog_kills_what_parent_death_cannot_reach(tmp_path):
    """A grandchild gets no parent-death signal; the watchdog kills its group, the processes
    carrying the registered marker, and runs the cleanup command."""
    marker = f"twinserve-marker-{os.getpid()}-{time.time_ns()}"
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker],
                             start_new_session=True)  # a daemon in a session of its own
    try:
        launcher, child = start_launcher(tmp_path, PARENT_OF_ONE, True, marker)
        (grandchild,) = read_pids(tmp_path / "child.log", 1)
        assert not gone(grandchild, within_s=0.5)
        launcher.kill()
        launcher.wait()
        assert gone(child) and gone(grandchild) and gone(stray.pid)
        deadline = time.monotonic() + 20
        while not (tmp_path / "cleaned").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "cleaned").exists()
    finally:
        stray.kill()
        stray.wait()


def test_a_clean_stop_leaves_the_watchdog_nothing_to_do(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from shared_pipeline.processes import ManagedProcess
        from shared_pipeline.watchdog import watchdog
        child = ManagedProcess("c", [sys.executable, "-c", "import time; time.sleep(60)"],
                               Path({str(tmp_path)!r}) / "c.log")
        child.start()
        watchdog().guard_command("touch", ["touch", {str(tmp_path / "cleaned")!r}])
        watchdog().forget_command("touch")
        child.stop(grace_s=5)
        print(watchdog().process.pid, flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, timeout=60)
    assert gone(int(out.stdout.split()[-1]))  # EOF: the watchdog exits
    assert not (tmp_path / "cleaned").exists()


GRACEFUL = textwrap.dedent("""
    import sys, time
    from shared_pipeline.shutdown import graceful_signals
    with graceful_signals():
        try:
            print("up", flush=True)
            time.sleep(60)
        except KeyboardInterrupt as exc:
            print("clean shutdown:", exc, flush=True)
            sys.exit(0)
    sys.exit(5)
""")


def _ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_sigterm_and_sighup_shut_down_like_ctrl_c(sig, inherited):
    # "ignored": started as a shell without job control starts `cmd &` (SIGINT set to SIG_IGN,
    # so Python installs no KeyboardInterrupt handler of its own): SIGINT must still stop it
    proc = subprocess.Popen([sys.executable, "-c", GRACEFUL], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=_ignoring_sigint if inherited == "ignored" else None)
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "clean shutdown" in out

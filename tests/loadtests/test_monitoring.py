"""manifests/monitoring: scrape config template and rendering, rules, dashboard, PodMonitors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from loadtests.prometheus import MONITORING_DIR, render_scrape_config, write_scrape_config

RAY_RULE = {"source_labels": ["__name__"], "regex": "ray_(pipeline_.*)",
            "target_label": "__name__", "replacement": "$1"}


def test_template_strips_the_ray_prefix_on_every_job():
    config = yaml.safe_load((MONITORING_DIR / "prometheus-local.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # kserve-orchestrated: the same stack label as kserve, its own job (loadtests.references)
    assert set(jobs) == {"kserve", "kserve-orchestrated", "rayserve", "inprocess"}
    assert all(RAY_RULE in job["metric_relabel_configs"] for job in jobs.values())
    assert re.fullmatch(RAY_RULE["regex"], "ray_pipeline_requests_total")


def test_rendering_fills_the_local_ports_and_keeps_the_rules():
    config = render_scrape_config({"kserve": ["127.0.0.1:5001", "127.0.0.1:5002"],
                                   "rayserve": ["127.0.0.1:6001"]}, scrape_interval_s=1.5)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"kserve", "rayserve"}  # no target, no job
    assert jobs["kserve"]["static_configs"] == [
        {"targets": ["127.0.0.1:5001", "127.0.0.1:5002"]}]
    assert jobs["rayserve"]["metric_relabel_configs"] == [RAY_RULE]
    assert config["global"]["scrape_interval"] == "1500ms"  # Prometheus takes no "1.5s"
    assert config["rule_files"] == [str(MONITORING_DIR / "recording-rules.yml")]
    with pytest.raises(KeyError, match="no scrape job"):
        render_scrape_config({"triton": ["127.0.0.1:1"]})


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (prometheus) not installed")
def test_rendered_config_and_rules_pass_promtool(tmp_path):
    path = write_scrape_config(tmp_path / "p.yml", {"inprocess": ["127.0.0.1:8010"],
                                                    "rayserve": ["127.0.0.1:8081"]})
    out = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "13 rules found" in out.stdout + out.stderr


def test_prometheus_rule_resource_matches_the_recording_rules():
    rules = yaml.safe_load((MONITORING_DIR / "recording-rules.yml").read_text())
    resource = yaml.safe_load((MONITORING_DIR / "prometheusrule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"] == rules
    for rule in rules["groups"][0]["rules"]:
        assert "pipeline_" in rule["expr"] and "stack" in rule["expr"]


def test_podmonitors_scrape_both_stacks_and_rename_ray_metrics():
    docs = list(yaml.safe_load_all((MONITORING_DIR / "podmonitors.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert {d["kind"] for d in docs} == {"PodMonitor"}
    kserve = by_name["twinserve-kserve"]["spec"]
    assert kserve["podMetricsEndpoints"][0]["path"] == "/metrics"
    ray = by_name["twinserve-rayserve"]["spec"]["podMetricsEndpoints"][0]
    assert ray["port"] == "metrics"
    assert {"sourceLabels": ["__name__"], "regex": "ray_(pipeline_.*)",
            "targetLabel": "__name__", "replacement": "$1"} in ray["metricRelabelings"]


def dashboard_exprs() -> list[str]:
    dash = json.loads((MONITORING_DIR / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_has_a_stack_variable_and_only_pipeline_panels():
    dash = json.loads((MONITORING_DIR / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert "pipeline_" in variables["stack"]["definition"]
    assert variables["stack"]["includeAll"] and variables["stack"]["multi"]
    exprs = dashboard_exprs()
    assert len(exprs) >= 12
    for expr in exprs:
        metrics = set(re.findall(r"\b([a-z_:]+)\{", expr))
        assert metrics and all(m.startswith("pipeline_") for m in metrics), expr
        assert 'stack=~"$stack"' in expr, expr
        assert re.search(r"by \(stack\b", expr), expr  # every series keeps its stack

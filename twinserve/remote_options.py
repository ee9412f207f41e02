"""The CLI's options for a benchmark or experiment against a deployment (`--url`,
`--metrics-url`, `--prometheus-url`, `--scenario PATH`), turned into the harness's objects; bad
values end the command with exit code 2 and a message naming the option or field."""

from __future__ import annotations

import typer
from rich.console import Console

from loadtests.remote import RemoteTarget, parse_targets, with_metrics
from loadtests.scenario_file import ScenarioFileError, resolve_scenario
from loadtests.scenarios import Scenario, with_stacks

URL_HELP = ("Base URL of a running deployment (no stack is started); compare: NAME=URL, "
            "repeatable.")
PROM_HELP = "With --url: query this Prometheus (e.g. the cluster's) for server-side figures."
METRICS_HELP = "With --url: scrape this /metrics URL (compare: NAME=URL), repeatable."
SCENARIO_HELP = "Scenario name (smoke, demo) or a YAML file (examples/scenarios/)."
STACKS_HELP = ("The stacks to compare, comma-separated (kserve, kserve-orchestrated, rayserve); "
               "default: the scenario's `stacks` (demo: all three; smoke: kserve,rayserve).")
CLUSTER_HELP = ("Act on a deployment through the Kubernetes API (KServe only: ClusterControl; "
                "Ray's RayService upgrade is not implemented); load goes to --url.")


def refuse(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]{message}[/]", markup=True, highlight=False)
    return typer.Exit(2)


def scenario_or_exit(console: Console, value: str | None, stacks: str | None = None) -> Scenario:
    """The scenario a name or YAML path names, read before anything starts; `stacks`
    (`--stacks a,b`) replaces the stacks it compares."""
    try:
        scenario = resolve_scenario(value)
        return with_stacks(scenario, stacks) if stacks is not None else scenario
    except (ScenarioFileError, KeyError) as exc:
        raise refuse(console, str(exc).strip("'\"")) from None
    except ValueError as exc:
        raise refuse(console, f"--stacks {stacks}: {exc}") from None


def targets_or_exit(console: Console, urls: list[str] | None, metrics_urls: list[str] | None,
                    default_name: str | None = None) -> dict[str, RemoteTarget]:
    """`--url` / `--metrics-url` values as targets (empty when no `--url` was given)."""
    if not urls:
        if metrics_urls:
            raise refuse(console, "--metrics-url needs --url (the endpoint it belongs to)")
        return {}
    try:
        return with_metrics(parse_targets(urls, default_name), metrics_urls or [], default_name)
    except ValueError as exc:
        raise refuse(console, str(exc)) from None


def cluster_running(stack: str, url: str | None, context: str | None, namespace: str | None):
    """`experiment --cluster`: the (handle, control) context of the deployment at `url`."""
    from loadtests.cluster_experiment import CLUSTER_STACKS, cluster_stack

    console = Console(stderr=True)
    if stack == "kserve-orchestrated":  # the same InferenceServices: only the entry URL differs
        raise refuse(console, "--cluster: use --stack kserve with --url set to the "
                              "orchestrating entry's URL (both topologies roll the same "
                              "InferenceServices)")
    if stack not in CLUSTER_STACKS:
        raise refuse(console, f"--cluster drives KServe only, not {stack}: a RayService "
                              "upgrade through the Kubernetes API is not implemented")
    if not url:
        raise refuse(console, "--cluster needs --url: the deployment's entry point")
    target = targets_or_exit(console, [url], None, stack)[stack]
    return cluster_stack(target, context=context, namespace=namespace)

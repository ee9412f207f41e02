"""The application builder the Serve config imports (`import_path: rayserve_impl.app:build_app`).

It binds one deployment per stage and the ingress over their handles, with deliberate sizing and
backpressure. These are the code defaults; the Serve config (manifests/rayserve/serve-config.yaml)
repeats them so an operator sees and edits them in one file, and a test keeps the two equal.

Why these numbers (2-core laptop first, the same config on a cluster with GPU generators):
- `num_cpus` is fractional so all seven replicas fit a 2-CPU local Ray (sum 1.55), leaving room
  for one extra generator replica if autoscaling asks for it. Ray reserves these, it does not
  pin cores: they are placement weights, not limits.
- `max_ongoing_requests` is what one replica is handed at once. CPU stages run their work in a
  thread, so more than a few concurrent calls only queue inside the replica, where Serve cannot
  see or shed them. A generator is handed the batch vLLM should see (8: on 2 CPU cores vLLM's
  throughput stops growing near 8 streams while every stream slows; raise it on a GPU).
- `max_queued_requests` bounds the wait in each caller's queue (Serve enforces it per caller:
  per proxy for the ingress, per ingress replica for the stages). The default, -1, is an
  unbounded queue: under overload, latency grows without limit. Past the bound the caller gets
  `BackPressureError` at once: the ingress answers it with 503 + Retry-After and the shared error
  JSON; for the ingress itself the proxy answers 503 + Retry-After (`backpressure_config`).
- `backpressure_config`: 503 (the server is overloaded, not the client rate-limited: the same
  status the KServe stack gives) and a `Retry-After` so clients back off instead of hammering.
- `autoscaling_config` scales on ongoing requests per replica. Targets sit below
  `max_ongoing_requests` so a replica is added before callers start queueing; generators never
  scale to zero (a vLLM start is ~35 s on CPU, minutes for a large model on GPU), scale up after
  30 s of sustained load and down only after 5 quiet minutes, to avoid flapping on bursts.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict
from ray.serve import Application

from rayserve_impl.generate import GeneratorDeployment
from rayserve_impl.ingress import PipelineIngress
from rayserve_impl.postprocess import PostProcessorDeployment
from rayserve_impl.rerank import RerankerDeployment
from rayserve_impl.retrieve import RetrieverDeployment
from rayserve_impl.route import RouterDeployment
from shared_pipeline.config import Settings

# NOTE: no `from __future__ import annotations` here: Serve reads `build_app`'s annotation at
# run time to turn the config's `args` into `BuildArgs`, and a string annotation defeats that.

BACKPRESSURE = {"status_code": 503, "retry_after_s": 1}


def _autoscaling(target: float, max_replicas: int, **extra: Any) -> dict[str, Any]:
    return {"min_replicas": 1, "max_replicas": max_replicas, "target_ongoing_requests": target,
            "upscale_delay_s": 30, "downscale_delay_s": 300, **extra}


# Deployment name -> Serve options. The names are what the Serve config overrides by.
DEPLOYMENT_OPTIONS: dict[str, dict[str, Any]] = {
    # Async, holds a slot for a whole answer, does no compute: many at once is cheap.
    "ingress": {"ray_actor_options": {"num_cpus": 0.1}, "max_ongoing_requests": 64,
                "max_queued_requests": 128, "backpressure_config": BACKPRESSURE,
                "autoscaling_config": _autoscaling(32, 2)},
    # Embedding a query + BM25: a few ms of CPU each, run in a thread.
    "retriever": {"ray_actor_options": {"num_cpus": 0.25}, "max_ongoing_requests": 8,
                  "max_queued_requests": 64, "backpressure_config": BACKPRESSURE,
                  "autoscaling_config": _autoscaling(4, 2)},
    "reranker": {"ray_actor_options": {"num_cpus": 0.25}, "max_ongoing_requests": 8,
                 "max_queued_requests": 64, "backpressure_config": BACKPRESSURE,
                 "autoscaling_config": _autoscaling(4, 2)},
    # A rule over a few numbers: microseconds.
    "router": {"ray_actor_options": {"num_cpus": 0.05}, "max_ongoing_requests": 32,
               "max_queued_requests": 128, "backpressure_config": BACKPRESSURE,
               "autoscaling_config": _autoscaling(16, 2)},
    "postprocessor": {"ray_actor_options": {"num_cpus": 0.1}, "max_ongoing_requests": 32,
                      "max_queued_requests": 128, "backpressure_config": BACKPRESSURE,
                      "autoscaling_config": _autoscaling(16, 2)},
    # vLLM batches continuously: 8 streams per replica, 16 more may wait, then 503.
    "generator-small": {"ray_actor_options": {"num_cpus": 0.4}, "max_ongoing_requests": 8,
                        "max_queued_requests": 16,
                        "backpressure_config": {"status_code": 503, "retry_after_s": 2},
                        "autoscaling_config": _autoscaling(6, 2),
                        "health_check_period_s": 10, "health_check_timeout_s": 30},
    "generator-large": {"ray_actor_options": {"num_cpus": 0.4}, "max_ongoing_requests": 8,
                        "max_queued_requests": 16,
                        "backpressure_config": {"status_code": 503, "retry_after_s": 2},
                        "autoscaling_config": _autoscaling(6, 2),
                        "health_check_period_s": 10, "health_check_timeout_s": 30},
}


class BuildArgs(BaseModel):
    """The `args` of the application in the Serve config."""

    model_config = ConfigDict(extra="forbid")

    # Settings overrides on top of the environment (`TWINSERVE_*`, `TWINSERVE_CONFIG`) of the
    # process that builds the app; local mode passes the whole `Settings` it was given.
    settings: dict[str, Any] = {}


def build_app(args: BuildArgs) -> Application:
    """Bind the stage deployments and the ingress over their handles."""
    if not isinstance(args, BuildArgs):  # called directly with a dict (tests, `serve run`)
        args = BuildArgs.model_validate(args or {})
    settings = Settings(**args.settings)
    opts = DEPLOYMENT_OPTIONS

    def generator(tier: str) -> Application:
        name = f"generator-{tier}"
        return GeneratorDeployment.options(name=name, **opts[name]).bind(settings, tier)

    return PipelineIngress.options(**opts["ingress"]).bind(
        settings,
        RetrieverDeployment.options(**opts["retriever"]).bind(settings),
        RerankerDeployment.options(**opts["reranker"]).bind(settings),
        RouterDeployment.options(**opts["router"]).bind(settings),
        generator("small"),
        generator("large"),
        PostProcessorDeployment.options(**opts["postprocessor"]).bind(settings),
    )

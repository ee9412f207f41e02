"""The model-server entrypoint every KServe stage container runs (and local mode runs as-is).

    python -m kserve_impl.server --stage retrieve --model_name retriever --http_port 8080
    python -m kserve_impl.server --stage generate --tier small --model_name generator-small ...
    python -m kserve_impl.server --stage pipeline --model_name pipeline ...   # the orchestrator

`--stage pipeline` is the orchestrated topology's entry (`kserve_impl.orchestrator`): it calls the
other stage servers at the URLs in `TWINSERVE_STAGE_URL_*` and serves the OpenAI routes
(`kserve_impl.orchestrator_routes`).

Settings come from the environment (`TWINSERVE_*`, `TWINSERVE_CONFIG`), as in a pod.
`--http_host` (default 0.0.0.0, what a pod needs) is how local mode binds to 127.0.0.1 only:
KServe 0.21's REST server hard-codes host 0.0.0.0 and has no option for it (see `HostModelServer`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from shared_pipeline.schemas import STAGES

logger = logging.getLogger("kserve_impl.server")
ENTRY_STAGE = "pipeline"


def build_parser() -> argparse.ArgumentParser:
    import kserve

    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser],
                                     description="One twinserve pipeline stage as a KServe model.")
    parser.add_argument("--stage", required=True, choices=(*STAGES, ENTRY_STAGE),
                        help="Which stage to serve (pipeline: the orchestrating entry).")
    parser.add_argument("--tier", choices=("small", "large"), default=None,
                        help="The generator tier (required with --stage generate).")
    parser.add_argument("--http_host", default="0.0.0.0",
                        help="Address the REST server binds (local mode: 127.0.0.1).")
    parser.add_argument("--local_traffic_split", action="store_true",
                        help="--stage pipeline, local mode only: serve PUT /local/traffic, the "
                             "canary split the local rollout sets (Knative's on a cluster).")
    # The InferenceGraph calls each step over REST v1 only; gRPC would open an unused port
    # (8081) in every server. `--enable_grpc true` turns it back on.
    parser.set_defaults(enable_grpc=False)
    return parser


def model_server_class(host: str):
    """`kserve.ModelServer`, or a subclass whose REST server binds `host` instead of 0.0.0.0.

    KServe 0.21 builds its `RESTServer` (with `uvicorn.Config(host="0.0.0.0")`) inside
    `ModelServer.start()`, then calls `setup_event_loop()` before the server coroutine runs and
    binds. That overridable method is the one point where the config exists but no socket does,
    so the subclass sets the host there: no copy of KServe's start-up code, no patched module.
    """
    import kserve

    if host == "0.0.0.0":
        return kserve.ModelServer

    class HostModelServer(kserve.ModelServer):
        def setup_event_loop(self) -> None:
            if self._rest_server is None:  # workers > 1: a multi-process server, not covered
                raise RuntimeError("--http_host needs --workers 1")
            self._rest_server.config.host = host
            super().setup_event_loop()

    return HostModelServer


def build_model(stage: str, name: str, tier: str | None, settings, metrics):
    """The stage's `kserve.Model`, not yet loaded."""
    if stage == ENTRY_STAGE:
        from kserve_impl.orchestrator import PipelineModel

        return PipelineModel(name, settings, metrics)
    if stage == "retrieve":
        from kserve_impl.retrieve import RetrieverModel as cls
    elif stage == "rerank":
        from kserve_impl.rerank import RerankerModel as cls
    elif stage == "route":
        from kserve_impl.route import RouterModel as cls
    elif stage == "generate":
        from kserve_impl.generate import GeneratorModel

        return GeneratorModel(name, settings, metrics, tier)
    else:
        from kserve_impl.postprocess import PostProcessorModel as cls
    return cls(name, settings, metrics)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stage == "generate" and args.tier is None:
        parser.error("--stage generate needs --tier small|large")
    try:
        from kserve_impl.errors import install_error_handling
        from shared_pipeline.config import Settings
        from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments

        settings = Settings()
        metrics = PipelineMetrics("kserve", prometheus_instruments())
        model = build_model(args.stage, args.model_name, args.tier, settings, metrics)
        model.load()
        server = model_server_class(args.http_host)(
            http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers,
            enable_grpc=args.enable_grpc, max_threads=args.max_threads,
            max_asyncio_workers=args.max_asyncio_workers,
            enable_latency_logging=args.enable_latency_logging,
            timeout_keep_alive=args.timeout_keep_alive, event_loop=args.event_loop)
        install_error_handling(server, metrics)
        if args.stage == ENTRY_STAGE:
            from kserve.model_server import app

            from kserve_impl.orchestrator_routes import install_openai_routes, install_traffic_split
            from shared_pipeline.limits import install_limits

            install_openai_routes(app, model)
            if args.local_traffic_split:
                install_traffic_split(app, model)
            install_limits(app, settings.server)  # size, depth, slow senders: before parsing
    except Exception:
        logger.error("could not start the %s server", args.stage, exc_info=True)
        sys.exit(1)
    server.start([model])


if __name__ == "__main__":
    main()

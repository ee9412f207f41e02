"""The benchmark scenarios, all in one place: what load, for how long, with what requests.

Every stack runs the identical scenario. Sizes are set for the 2-core CPU machine the project is
developed on (SmolLM2-135M: a 600-token prompt and 32 new tokens take about a second alone), so
rates and concurrencies are small; on a GPU cluster scale them up in a YAML file of your own
(`Scenario.model_validate(yaml)`) rather than editing these.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError, field_validator

from loadtests.shapes import ArrivalPhase, ConcurrencyPhase, Phase
from loadtests.stacks import SERVED_STACKS

WHOLE_SUFFIX = "-whole"  # the in-process reference's extra non-streaming phase
# What a scenario compares when it does not say: the two serving layers, KServe in its graph
# topology (each extra stack costs one more run of every phase).
DEFAULT_STACKS = ("kserve", "rayserve")


class Scenario(BaseModel):
    """One benchmark: warm-up, then the phases in order, each a separate locust run."""

    name: str
    description: str
    stacks: list[str] = Field(default_factory=lambda: list(DEFAULT_STACKS), min_length=1,
                              description="the serving stacks `compare` runs, in this order "
                                          "(it adds the in-process references and the engine "
                                          "alone itself); `--stacks` overrides")
    max_tokens: int = Field(32, gt=0, description="tokens generated per request")
    ignore_eos: bool = Field(True, description="every request generates exactly max_tokens")
    warmup_requests: int = Field(3, ge=0, description="at least this many sequential requests "
                                 "before measuring (loadtests.warmup: then until steady)")
    warmup_max_requests: int = Field(16, gt=0, description="warm-up gives up being steady here")
    phases: list[Phase] = Field(min_length=1)
    stop_timeout_s: float = Field(45.0, ge=0, description="in-flight requests may finish")
    scrape_interval_s: float = Field(2.0, gt=0)
    vllm_bench: bool = Field(False, description="after a streaming stack's locust phases, one "
                             "`vllm bench serve` run at a small fixed load beside them "
                             "(loadtests.vllm_bench.compare_plan)")

    @field_validator("stacks")
    @classmethod
    def _known_stacks(cls, stacks: list[str]) -> list[str]:
        unknown = [s for s in stacks if s not in SERVED_STACKS]
        if unknown:
            raise ValueError(f"unknown stack {', '.join(unknown)}; known: "
                             f"{', '.join(SERVED_STACKS)}")
        if len(set(stacks)) != len(stacks):
            raise ValueError(f"a stack is named twice: {', '.join(stacks)}")
        return stacks

    @property
    def load_seconds(self) -> float:
        return sum(p.duration_s for p in self.phases)


def with_stacks(scenario: Scenario, stacks: str) -> Scenario:
    """`scenario` comparing the comma-separated `stacks` instead (`--stacks`); a ValueError
    names the unknown or repeated stack."""
    names = [s.strip() for s in stacks.split(",") if s.strip()]
    try:
        return Scenario.model_validate({**scenario.model_dump(), "stacks": names})
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ")
                                   for e in exc.errors())) from None


def whole_reference_phase(scenario: Scenario) -> Phase | None:
    """The first concurrency phase again, answered whole (`stream: false`), for the in-process
    reference only: KServe cannot stream, so its serving overhead is measured against the
    reference answering the same way (per-token SSE work is not free on a 2-core machine)."""
    first = next((p for p in scenario.phases if p.kind == "concurrency"), None)
    return first.model_copy(update={"name": f"{first.name}{WHOLE_SUFFIX}"}) if first else None


SMOKE = Scenario(
    name="smoke",
    description="A quick pass over every measurement: one user, four users, Poisson arrivals.",
    stacks=list(DEFAULT_STACKS),  # the smoke test's time: kserve-orchestrated by `--stacks`
    max_tokens=16,
    warmup_requests=2,
    warmup_max_requests=10,
    stop_timeout_s=20.0,
    phases=[
        ConcurrencyPhase(name="c1", users=1, duration_s=12),
        ConcurrencyPhase(name="c4", users=4, duration_s=15),
        ArrivalPhase(kind="poisson", name="poisson-0.4", rate_rps=0.4, duration_s=15,
                     max_users=8, seed=7),
    ],
)

DEMO = Scenario(
    name="demo",
    description="`make demo`: both KServe topologies and Ray Serve; concurrency steps 1-4-8, "
                "then open-loop constant and Poisson arrivals at the same mean rate (phases "
                "sized so the demo fits 30 min on 2 cores: README, 'what the demo trades').",
    stacks=["kserve", "kserve-orchestrated", "rayserve"],
    max_tokens=32,
    warmup_requests=4,
    warmup_max_requests=12,
    stop_timeout_s=45.0,
    vllm_bench=True,
    phases=[
        ConcurrencyPhase(name="c1", users=1, duration_s=15),
        ConcurrencyPhase(name="c4", users=4, duration_s=12),
        # c8 is sized by its sample: the high-load p95 (and the decision's c8 limit) needs
        # n >= 20 from every stack, and KServe's transformers generator gave as few as 18 in
        # 30 s on a slow box, while vLLM's stacks send 30-50 in 20 s
        ConcurrencyPhase(name="c8", users=8, duration_s=20, min_requests=22, max_duration_s=75),
        # open loop: exactly rate x duration = 6 requests each
        ArrivalPhase(kind="constant", name="constant-0.5", rate_rps=0.5, duration_s=12,
                     max_users=16),
        ArrivalPhase(kind="poisson", name="poisson-0.5", rate_rps=0.5, duration_s=12,
                     max_users=16, seed=7),
    ],
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (SMOKE, DEMO)}
DEFAULT_SCENARIO = DEMO.name


def get_scenario(name: str | None) -> Scenario:
    """The named scenario (default: the `make demo` one); unknown names list the known ones."""
    name = name or DEFAULT_SCENARIO
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]

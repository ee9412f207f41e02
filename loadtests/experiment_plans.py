"""What an experiment does and how big it is: the kinds, revision B's changes, the SLO that
counts a breach, and the shipped plans (`demo`, `smoke`). Data only; experiments.py runs them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared_pipeline.control import ChangeMode
from shared_pipeline.revision import RevisionChange

Kind = Literal["rollback", "kill-replica", "overload"]
KINDS: tuple[Kind, ...] = ("rollback", "kill-replica", "overload")
NEW_PROMPT = ("Answer the Python question using only the numbered passages below, citing them "
              "as [1], [2]. Keep it to three sentences.\n\n{passages}")

# Revision B of a rollback, by `--change`.
CHANGES: dict[str, RevisionChange] = {
    "benign": RevisionChange(revision_name="b", prompt_template=NEW_PROMPT),
    "bad": RevisionChange(revision_name="b", fail_ratio=0.3),
    "slow": RevisionChange(revision_name="b", delay_ms=3000),
}
DEFAULT_MODE: dict[str, ChangeMode] = {"kserve": "canary", "kserve-orchestrated": "canary",
                                       "rayserve": "inplace"}


class SLO(BaseModel):
    """What counts as a breach while a revision rolls out (see loadtests.figures)."""

    window_s: float = Field(10.0, gt=0)
    min_requests: int = Field(3, gt=0)
    max_error_rate: float = Field(0.05, ge=0, le=1)
    latency_factor: float = Field(2.0, gt=1)


class Plan(BaseModel):
    """One experiment's load and timing; `PLANS` holds the shipped sizes."""

    users: int = Field(4, gt=0, description="steady closed-loop load (rollback, kill-replica)")
    max_tokens: int = Field(16, gt=0)
    warmup_requests: int = Field(2, ge=0)
    baseline_s: float = Field(20, gt=0, description="load before the first action")
    hold_s: float = Field(25, gt=0, description="rollback: B serves this long")
    hold_responses: int = Field(10, ge=1, description="rollback: and on until this many "
                                "responses completed off A (B's sample, on a slow box)")
    tail_s: float = Field(20, gt=0, description="load after the last action")
    change: Literal["benign", "bad", "slow"] = "bad"
    fail_ratio: float | None = Field(None, gt=0, le=1, description="`bad`: the share B fails "
                                     "(default CHANGES['bad'], 0.3)")
    mode: ChangeMode | None = None  # None: the stack's own (KServe canary, Ray in place)
    percent: int = Field(100, ge=0, le=100, description="KServe canaryTrafficPercent")
    target: str = "generator-small"
    recover_timeout_s: float = Field(300, gt=0)
    calibrate_users: int = Field(8, gt=0)
    calibrate_s: float = Field(30, gt=0)
    overload_factor: float = Field(3.0, gt=1)
    overload_s: float = Field(30, gt=0)
    overload_max_users: int = Field(64, gt=0)
    after_requests: int = Field(3, ge=1, description="overload: single requests afterwards")
    stop_timeout_s: float = Field(60, ge=0)
    slo: SLO = SLO()

    def revision_b(self) -> RevisionChange:
        """Revision B of a rollback: `CHANGES[change]`, with this plan's `fail_ratio`."""
        change = CHANGES[self.change]
        if self.change == "bad" and self.fail_ratio is not None:
            return change.model_copy(update={"fail_ratio": self.fail_ratio})
        return change


PLANS: dict[str, Plan] = {
    "demo": Plan(),
    # 10 responses off A at half failing: P(no failure) = 0.1% (at 0.3 it would be 2.8%)
    "smoke": Plan(users=3, max_tokens=8, baseline_s=12, hold_s=15, tail_s=10, fail_ratio=0.5,
                  target="postprocessor", calibrate_users=4, calibrate_s=15, overload_s=15,
                  overload_max_users=32),
}

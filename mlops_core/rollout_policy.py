"""The `[models."name".rollout]` table of the policy: a staged rollout's plan.

A rollout of an approved version runs through the stages in order (shadow first, then
growing shares of split traffic); each stage is watched by its guardrails and left once
its minimums are met and every guardrail holds. After the last stage the promotion target
moves to the version. Kept apart from `policy.py` so the plan's shape reads on its own;
`mlops_core.rollout` runs it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["shadow", "split"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Guardrails(_Strict):
    """What the challenger's rows of the current stage must satisfy; unset is not watched."""

    # Share of the challenger's rows whose `error` column is set.
    max_error_rate: float | None = Field(None, ge=0, le=1)
    # 99th percentile of the challenger's `latency_ms` (numpy's linear percentile).
    max_latency_p99_ms: float | None = Field(None, gt=0)
    # Normed Wasserstein distance of the challenger's scores from the champion's in the
    # same stage (the drift engine's `wasserstein` test; its default threshold is 0.1).
    max_prediction_drift: float | None = Field(None, gt=0)
    # The challenger may not be surely worse than the champion over the labelled rows of
    # the stage: the live comparison, set by the model's `live_comparison` policy if any
    # (see `rollout.quality`).
    quality_vs_champion: bool = False

    @property
    def configured(self) -> list[str]:
        names = ["max_error_rate", "max_latency_p99_ms", "max_prediction_drift"]
        watched = [name for name in names if getattr(self, name) is not None]
        return watched + (["quality_vs_champion"] if self.quality_vs_champion else [])


class RolloutStage(_Strict):
    name: str = Field(min_length=1, max_length=64)
    mode: Mode
    # The challenger's share of traffic in percent; 0 in shadow mode, where it scores every
    # request next to the champion but serves none.
    traffic: float = Field(ge=0, le=100)
    min_duration_minutes: float = Field(0, ge=0)
    min_requests: int = Field(0, ge=0)
    min_labelled: int = Field(0, ge=0)
    # None: the plan's guardrails.
    guardrails: Guardrails | None = None

    @model_validator(mode="after")
    def _traffic_fits_mode(self) -> RolloutStage:
        if self.mode == "shadow" and self.traffic != 0:
            raise ValueError(f"stage {self.name!r}: a shadow stage serves no traffic (traffic = 0)")
        if self.mode == "split" and self.traffic == 0:
            raise ValueError(f"stage {self.name!r}: a split stage needs traffic above 0")
        return self


class RolloutPlan(_Strict):
    # False: an approver advances each stage once it is ready (`rollout advance`).
    auto_advance: bool = True
    guardrails: Guardrails = Field(default_factory=Guardrails)
    stages: list[RolloutStage] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_names(self) -> RolloutPlan:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be distinct, got {names}")
        return self

    def guardrails_of(self, stage: RolloutStage) -> Guardrails:
        return stage.guardrails if stage.guardrails is not None else self.guardrails

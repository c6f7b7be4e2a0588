"""How the quality guardrail judges a stage: the live comparison of the quality checks.

The guardrail asks `evidence.live_comparison.compare_live` the same question the
`live_comparison` gate asks, over the stage's rows only: the challenger against the
champion on the labelled rows, paired (shadow, DeLong for ROC AUC) or unpaired (split),
with a confidence interval. A model's `[models.X.live_comparison]` policy sets the metric,
the confidence, the resamples, the labelled rows needed and the drop allowed; without one
the rollout's own defaults below apply (the key metric, never worse at 95%).

The gate must be sure the drop is small enough to pass; a guardrail rolls a live version
back, so it breaches only when the comparison is sure the challenger is worse than the
allowed drop (the interval's best end is below it) and otherwise holds its judgement.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_core.evidence.live_comparison import ComparisonConfig
from mlops_core.evidence.quality_runs import quality_spec
from mlops_core.policy import QUALITY_METRICS, ModelPolicy
from mlops_core.rollout_policy import RolloutStage
from mlops_core.stores.registry import Registry

DEFAULT_METRIC = "roc_auc"
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class QualityRule:
    """What the quality guardrail compares, and how many labelled rows it waits for."""

    metric: str
    config: ComparisonConfig
    max_drop: float
    # Labelled rows of the comparison (pairs in shadow, both versions' rows in split).
    min_compared: int
    # Labelled rows each version needs before the comparison runs at all.
    min_per_version: int
    source: str  # "policy live_comparison" | "rollout defaults"


def quality_rule(
    registry: Registry,
    policy: ModelPolicy,
    model: str,
    champion: str,
    challenger: str,
    key_metric: str,
    stage: RolloutStage,
    min_rows: int,
) -> QualityRule:
    """The rule of a stage: the model's live comparison policy when it has one."""
    spec = quality_spec(registry, policy, model, champion, challenger)
    live = policy.live_comparison
    per_version = max(min_rows, stage.min_labelled)
    if live is not None:
        metric, confidence, resamples = live.metric, live.confidence, live.n_resamples
        max_drop, min_compared = live.max_drop, live.min_labelled_rows
        source = "policy live_comparison"
    else:
        metric = key_metric if key_metric in QUALITY_METRICS else DEFAULT_METRIC
        confidence, resamples, max_drop = DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, 0.0
        min_compared, source = per_version, "rollout defaults"
    config = ComparisonConfig(
        champion=champion,
        challenger=challenger,
        task=spec.task,
        columns=spec.columns,
        confidence=confidence,
        n_resamples=resamples,
    )
    return QualityRule(metric, config, max_drop, min_compared, per_version, source)

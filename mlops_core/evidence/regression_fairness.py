"""Group fairness of a regressor's evaluation set: how its predictions and errors differ
between groups of people.

Per group: the row count, the mean prediction, the mean label, the mean absolute error and
the root mean squared error. For each of the four, the largest difference between the
compared groups (``<metric>_difference``, max - min) and their ratio (``<metric>_ratio``,
min / max). The numbers are those of Fairlearn's ``MetricFrame`` with scikit-learn's
``mean_absolute_error`` and ``root_mean_squared_error`` and a mean, and its ``difference()``
and ``ratio()`` with ``method="between_groups"``; with sample weights, those of the same
metrics given ``sample_weight``. They come from one weighted ``np.bincount`` per sum and
feature rather than a Python call per group and metric.

A ratio means something for quantities that are never negative (errors, prices, counts):
with a mean that changes sign between groups, min / max is not a measure of parity (the
difference is). Small groups, missing sensitive values and undefined disparities behave as
for classifiers (see `mlops_core.evidence.fairness`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput
from mlops_core.evidence.fairness_groups import (
    OVERALL_GROUP,
    DisparityCheck,
    Encoded,
    FairnessConfig,
    check,
    check_common_config,
    check_no_missing,
    combine,
    control_note,
    coverage_notes,
    encode,
    min_over_max,
    number_from_json,
    rate,
    sensitive_codes,
    spread,
    weights_of,
    within_control_levels,
)
from mlops_core.policy import REGRESSION_FAIRNESS_METRICS, REGRESSION_GROUP_METRICS

GROUP_FIELDS = REGRESSION_GROUP_METRICS


@dataclass(frozen=True)
class RegressionGroupMetrics:
    """One group's mean prediction, mean label and errors; NaN when its weights sum to 0."""

    group: str
    count: int
    mean_prediction: float
    mean_label: float
    mae: float
    rmse: float
    insufficient_data: bool


@dataclass
class RegressionFeatureResult:
    """Per-group values and the disparities between them for one sensitive feature."""

    name: str
    groups: list[RegressionGroupMetrics]
    disparities: dict[str, float]
    checks: list[DisparityCheck]
    passed: bool | None
    by_control: dict[str, dict[str, float]] = field(default_factory=dict)

    metrics = REGRESSION_FAIRNESS_METRICS

    @property
    def insufficient_groups(self) -> list[str]:
        return [g.group for g in self.groups if g.insufficient_data]

    def disparity(self, metric: str) -> float:
        if metric not in self.disparities:
            raise InvalidInput(
                f"Unknown disparity metric {metric!r} for a regressor; use one of "
                f"{', '.join(REGRESSION_FAIRNESS_METRICS)}."
            )
        return self.disparities[metric]

    def undefined_reason(self, metric: str) -> str:
        compared = [g for g in self.groups if not g.insufficient_data]
        small = [g.group for g in self.groups if g.insufficient_data]
        if len(compared) >= 2 and metric.endswith("_ratio"):
            return f"the largest group {metric.removesuffix('_ratio')} is 0, so min / max is 0 / 0"
        parts = ["fewer than two groups are compared"]
        if small:
            parts.append(f"{', '.join(small)} had too few rows to be compared")
        return "; ".join(parts)

    def groups_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(g) for g in self.groups]).set_index("group")


def evaluate_regression(
    df: pd.DataFrame, config: FairnessConfig
) -> tuple[list[RegressionFeatureResult], RegressionGroupMetrics, list[str]]:
    """Features, the overall values and the notes of a regressor's fairness report."""
    _check_config(config)
    assert config.prediction is not None  # checked above
    label = _values(df[config.label], "Label")
    prediction = _values(df[config.prediction], "Prediction")
    weights = np.ones(len(df)) if config.weight is None else weights_of(df[config.weight])
    sums = _Sums(prediction, label, weights)
    notes = [] if config.max_disparity else ["No thresholds are set, so nothing passes or fails."]
    control = None if config.control is None else encode(df[config.control])
    every_row = np.ones(len(df), dtype=bool)
    features = []
    for feature in sensitive_codes(df, config):
        result, feature_notes = _evaluate_feature(feature, sums, every_row, config)
        if control is not None:
            result = _within_control_levels(result, feature, control, sums, config)
            feature_notes.append(control_note(feature.name, config, len(result.by_control)))
        features.append(result)
        notes.extend(feature_notes)
    everyone = Encoded(OVERALL_GROUP, np.zeros(len(df), dtype=np.intp), [OVERALL_GROUP])
    overall = _group_values(everyone, sums, every_row)
    return features, _groups([OVERALL_GROUP], overall, np.ones(1, bool))[0], notes


def _check_config(config: FairnessConfig) -> None:
    check_common_config(config, REGRESSION_FAIRNESS_METRICS)
    if config.prediction is None or config.score is not None:
        raise InvalidInput(
            "A regressor's fairness needs the prediction column (the predicted value) and no "
            f"score column; got prediction={config.prediction!r}, score={config.score!r}."
        )


def _values(column: pd.Series, role: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise InvalidInput(
            f"{role} column {column.name!r} must hold numbers for a regressor, but its type is "
            f"{column.dtype}."
        )
    check_no_missing(column, role)
    values = column.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InvalidInput(f"{role} column {column.name!r} holds infinite values.")
    return values


@dataclass(frozen=True)
class _Sums:
    """The weighted per-row terms each group sums."""

    prediction: np.ndarray
    label: np.ndarray
    weights: np.ndarray

    def terms(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        w = self.weights[rows]
        error = self.prediction[rows] - self.label[rows]
        return {
            "weight": w,
            "mean_prediction": w * self.prediction[rows],
            "mean_label": w * self.label[rows],
            "mae": w * np.abs(error),
            "rmse": w * error**2,
        }


@dataclass(frozen=True)
class _GroupValues:
    counts: np.ndarray
    values: dict[str, np.ndarray]


def _group_values(feature: Encoded, sums: _Sums, rows: np.ndarray) -> _GroupValues:
    n = len(feature.labels)
    totals = {
        name: np.bincount(feature.codes, weights=term, minlength=n)
        for name, term in sums.terms(rows).items()
    }
    weight = totals.pop("weight")
    values = {name: rate(total, weight) for name, total in totals.items()}
    values["rmse"] = np.sqrt(values["rmse"])
    return _GroupValues(np.bincount(feature.codes, minlength=n), values)


def _disparities(values: dict[str, np.ndarray], included: np.ndarray) -> dict[str, float]:
    out = {}
    for metric in GROUP_FIELDS:
        out[f"{metric}_difference"] = spread(values[metric][included])
        out[f"{metric}_ratio"] = min_over_max(values[metric][included])
    return {m: out[m] for m in REGRESSION_FAIRNESS_METRICS}


def _groups(
    labels: list[str], group_values: _GroupValues, included: np.ndarray
) -> list[RegressionGroupMetrics]:
    return [
        RegressionGroupMetrics(
            group=label,
            count=int(group_values.counts[i]),
            **{m: float(group_values.values[m][i]) for m in GROUP_FIELDS},
            insufficient_data=not bool(included[i]),
        )
        for i, label in enumerate(labels)
    ]


def _evaluate_feature(
    feature: Encoded, sums: _Sums, rows: np.ndarray, config: FairnessConfig
) -> tuple[RegressionFeatureResult, list[str]]:
    """`feature` holds the codes of the selected `rows` only."""
    group_values = _group_values(feature, sums, rows)
    # Combinations of values that never occur together are not groups.
    occurring = group_values.counts > 0
    group_values = _GroupValues(
        group_values.counts[occurring],
        {m: v[occurring] for m, v in group_values.values.items()},
    )
    labels = [label for label, keep in zip(feature.labels, occurring, strict=True) if keep]
    included = group_values.counts >= config.min_group_size
    disparities = _disparities(group_values.values, included)
    checks = [check(m, disparities[m], limit) for m, limit in config.max_disparity.items()]
    result = RegressionFeatureResult(
        name=feature.name,
        groups=_groups(labels, group_values, included),
        disparities=disparities,
        checks=checks,
        passed=combine([c.passed for c in checks]),
    )
    return result, _feature_notes(result, included, config)


def _within_control_levels(
    result: RegressionFeatureResult,
    feature: Encoded,
    control: Encoded,
    sums: _Sums,
    config: FairnessConfig,
) -> RegressionFeatureResult:
    def disparities(within: Encoded, rows: np.ndarray) -> dict[str, float]:
        return _evaluate_feature(within, sums, rows, config)[0].disparities

    levels = within_control_levels(
        feature, control, REGRESSION_FAIRNESS_METRICS, config, disparities
    )
    return replace(
        result,
        disparities=levels.worst,
        checks=levels.checks,
        passed=combine([c.passed for c in levels.checks]),
        by_control=levels.by_level,
    )


def _feature_notes(
    result: RegressionFeatureResult, included: np.ndarray, config: FairnessConfig
) -> list[str]:
    name = result.name
    notes = coverage_notes(name, result.groups, included, config.min_group_size)
    compared = [g for g in result.groups if not g.insufficient_data]
    if any(g.mean_prediction < 0 for g in compared) and any(
        g.mean_prediction > 0 for g in compared
    ):
        notes.append(
            f"{name}: mean predictions change sign between groups, so mean_prediction_ratio "
            "does not measure parity; use mean_prediction_difference."
        )
    return notes


# --- JSON -----------------------------------------------------------------------------------


def regression_group_from_dict(data: dict[str, Any]) -> RegressionGroupMetrics:
    return RegressionGroupMetrics(
        group=data["group"],
        count=int(data["count"]),
        **{m: number_from_json(data[m]) for m in GROUP_FIELDS},
        insufficient_data=bool(data["insufficient_data"]),
    )


def regression_feature_from_dict(name: str, data: dict[str, Any]) -> RegressionFeatureResult:
    return RegressionFeatureResult(
        name=name,
        groups=[regression_group_from_dict(g) for g in data["groups"]],
        disparities={m: number_from_json(data[m]) for m in REGRESSION_FAIRNESS_METRICS},
        checks=[
            DisparityCheck(
                metric=c["metric"],
                value=number_from_json(c["value"]),
                threshold=float(c["threshold"]),
                passed=c["passed"],
            )
            for c in data["checks"]
        ],
        passed=data["passed"],
        by_control={
            level: {m: number_from_json(v) for m, v in values.items()}
            for level, values in data.get("by_control", {}).items()
        },
    )

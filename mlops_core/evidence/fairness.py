"""Group fairness metrics for a binary classifier's evaluation set (a regressor's, with
``FairnessConfig(task="regression")``, are in `regression_fairness`; both make one
`FairnessReport`).

The numbers are those of ``fairlearn.metrics`` (``MetricFrame`` with ``selection_rate``,
``true_positive_rate``, ``false_positive_rate``, scikit-learn's ``precision_score`` and
``accuracy_score``, ``count``; and ``demographic_parity_difference``,
``demographic_parity_ratio``, ``equalized_odds_difference`` with ``agg="worst_case"`` and
``equal_opportunity_difference``, all with ``method="between_groups"``). They are derived
from per-group confusion counts taken with one ``np.bincount`` per feature instead of one
Python metric call per group and metric, which is what makes a million rows cheap.

Undefined rates
    A rate whose denominator is zero is undefined: NaN here, ``null`` in JSON. That is the
    TPR of a group without positive labels, the FPR of a group without negative labels and
    the precision of a group without predicted positives. Fairlearn (through scikit-learn's
    ``confusion_matrix(normalize="true")`` and ``precision_score(zero_division="warn")``)
    reports 0.0 for these instead, which would read as "the model misses every positive of
    this group" - a claim the data cannot support.

Disparities over undefined rates
    A difference is max - min (a ratio min / max) over the included groups whose rate is
    defined; groups where it is undefined are skipped. This is what ``MetricFrame.difference``
    and ``MetricFrame.ratio`` do with NaN entries (pandas skips them), so every disparity equals
    Fairlearn's whenever each included group's rate is defined, and otherwise equals Fairlearn's
    aggregation of a by-group table that holds NaN rather than 0 for the undefined rates. A
    disparity is NaN when no included group has the rate defined; ``demographic_parity_ratio``
    is NaN when every included group's selection rate is 0 (0 / 0, as in Fairlearn).
    ``equalized_odds_difference`` is the larger of the TPR and FPR gaps that are defined.

Small groups
    Groups with fewer than ``min_group_size`` rows are reported with ``insufficient_data`` set
    and left out of every disparity; the report's notes name them.

Missing sensitive values
    They form a group of their own, labelled ``(missing)``. (Fairlearn's MetricFrame refuses
    missing values outright.)

Overall
    ``FairnessReport.overall`` holds the same rates over every row, as ``MetricFrame.overall``
    does, so a chart can put each group next to the population.

Pass / fail
    Each threshold in ``max_disparity`` is a maximum, except for ratio metrics
    (``demographic_parity_ratio``), where it is a minimum. A check on an undefined value is
    ``None``. A feature, and the whole report, fails if any of its checks fails, is ``None``
    when none could be evaluated (or none is configured) and passes otherwise; the notes say
    which checks were not evaluated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput

# The shared names stay importable from here, where callers have always found them.
from mlops_core.evidence.fairness_groups import (
    INTERSECTION_SEPARATOR as INTERSECTION_SEPARATOR,
)
from mlops_core.evidence.fairness_groups import (
    MINIMUM_METRICS as MINIMUM_METRICS,
)
from mlops_core.evidence.fairness_groups import (
    MISSING_GROUP as MISSING_GROUP,
)
from mlops_core.evidence.fairness_groups import (
    OVERALL_GROUP,
    DisparityCheck,
    Encoded,
    FairnessConfig,
    check,
    check_common_config,
    check_frame,
    check_no_missing,
    combine,
    control_note,
    coverage_notes,
    encode,
    is_finite_number,
    json_number,
    min_over_max,
    number_from_json,
    rate,
    sample,
    sensitive_codes,
    spread,
    weights_of,
    within_control_levels,
)
from mlops_core.evidence.regression_fairness import (
    RegressionFeatureResult,
    RegressionGroupMetrics,
    evaluate_regression,
    regression_feature_from_dict,
    regression_group_from_dict,
)
from mlops_core.policy import (
    CLASSIFICATION_FAIRNESS_METRICS,
    REGRESSION_FAIRNESS_METRICS,
    REGRESSION_GROUP_METRICS,
)

DISPARITY_METRICS = CLASSIFICATION_FAIRNESS_METRICS
# The rate each disparity compares: its name, the GroupMetrics field, why a group lacks it.
_RATE_OF = {
    "demographic_parity_difference": ("selection rate", "selection_rate", "no rows"),
    "demographic_parity_ratio": ("selection rate", "selection_rate", "no rows"),
    "equal_opportunity_difference": ("TPR", "tpr", "no positive labels"),
    "equalized_odds_difference": ("TPR or FPR", "tpr", "no positive labels"),
}
_METRIC_LIST = ", ".join(DISPARITY_METRICS)


@dataclass(frozen=True)
class GroupMetrics:
    """Rates of one group; an undefined rate is NaN."""

    group: str
    count: int
    selection_rate: float
    tpr: float
    fpr: float
    precision: float
    accuracy: float
    insufficient_data: bool


@dataclass
class FeatureResult:
    """Per-group rates and disparities for one sensitive feature (or their intersection)."""

    name: str
    groups: list[GroupMetrics]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    equal_opportunity_difference: float
    checks: list[DisparityCheck]
    passed: bool | None
    # With a control column: each disparity per control level (the fields above hold the
    # worst level's value).
    by_control: dict[str, dict[str, float]] = field(default_factory=dict)

    metrics = DISPARITY_METRICS

    @property
    def insufficient_groups(self) -> list[str]:
        return [g.group for g in self.groups if g.insufficient_data]

    def undefined_reason(self, metric: str) -> str:
        """Why `metric` has no value: the groups that lacked the rate it compares."""
        compared = [g for g in self.groups if not g.insufficient_data]
        small = [g.group for g in self.groups if g.insufficient_data]
        rate, attribute, lacking = _RATE_OF[metric]
        without = [g.group for g in compared if math.isnan(getattr(g, attribute))]
        parts = [f"fewer than two compared groups have a {rate}"]
        if without:
            parts.append(f"{', '.join(without)} had {lacking}")
        if small:
            parts.append(f"{', '.join(small)} had too few rows to be compared")
        if metric == "demographic_parity_ratio" and not without and len(compared) >= 2:
            parts = ["no compared group has a positive prediction (0 / 0)"]
        return "; ".join(parts)

    def disparity(self, metric: str) -> float:
        if metric not in DISPARITY_METRICS:
            raise InvalidInput(f"Unknown disparity metric {metric!r}; use one of {_METRIC_LIST}.")
        return getattr(self, metric)

    def groups_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(g) for g in self.groups]).set_index("group")


@dataclass
class FairnessReport:
    """Results per feature; ``passed`` is None when no check could be evaluated."""

    features: list[FeatureResult] | list[RegressionFeatureResult]
    passed: bool | None
    n_rows: int
    config: FairnessConfig
    notes: list[str]
    overall: GroupMetrics | RegressionGroupMetrics

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def metrics(self) -> tuple[str, ...]:
        """The disparities this report holds for each feature, in display order."""
        return REGRESSION_FAIRNESS_METRICS if self.task == "regression" else DISPARITY_METRICS

    @property
    def group_fields(self) -> tuple[str, ...]:
        """The per-group values, after the group's name and row count."""
        return REGRESSION_GROUP_METRICS if self.task == "regression" else RATE_FIELDS

    def feature(self, name: str) -> FeatureResult | RegressionFeatureResult:
        for result in self.features:
            if result.name == name:
                return result
        raise InvalidInput(
            f"No fairness result for {name!r}; there are: {[f.name for f in self.features]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; undefined numbers become None."""
        return {
            "task": self.task,
            "features": {f.name: _feature_to_dict(f) for f in self.features},
            "passed": self.passed,
            "n_rows": self.n_rows,
            "config": asdict(self.config),
            "notes": list(self.notes),
            "overall": _group_to_dict(self.overall),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairnessReport:
        try:
            config = FairnessConfig(**data["config"])
            regression = config.task == "regression"
            read_feature = regression_feature_from_dict if regression else _feature_from_dict
            read_group = regression_group_from_dict if regression else _group_from_dict
            return cls(
                features=[read_feature(n, d) for n, d in data["features"].items()],
                passed=data["passed"],
                n_rows=int(data["n_rows"]),
                config=config,
                notes=list(data["notes"]),
                overall=read_group(data["overall"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"Not a fairness report ({type(exc).__name__}: {exc}); was it written by to_dict()?"
            ) from None


def evaluate_fairness(df: pd.DataFrame, config: FairnessConfig) -> FairnessReport:
    """Per-group rates, disparities and threshold checks for each sensitive feature.

    With two or more sensitive features, their intersection is evaluated as one more
    feature named e.g. ``gender&age_band``.
    """
    check_frame(df, config)
    if config.task == "regression":
        features, overall, notes = evaluate_regression(df, config)
        return FairnessReport(
            features=list(features),
            passed=combine([f.passed for f in features]),
            n_rows=len(df),
            config=config,
            notes=notes,
            overall=overall,
        )
    _check_config(config)
    actual = _binary_mask(df[config.label], "Label", config.positive_label)
    predicted = _predicted_mask(df, config)
    # One small integer per row, so a single bincount per feature yields the confusion counts.
    outcome = actual.astype(np.int8) * 2 + predicted.astype(np.int8)
    weights = None if config.weight is None else weights_of(df[config.weight])

    notes = _global_notes(predicted, config)
    control = None if config.control is None else encode(df[config.control])
    features = []
    for feature in sensitive_codes(df, config):
        result, feature_notes = _evaluate_feature(feature, outcome, weights, config)
        if control is not None:
            result = _within_control_levels(result, feature, control, outcome, weights, config)
            feature_notes.append(control_note(feature.name, config, len(result.by_control)))
        features.append(result)
        notes.extend(feature_notes)
    return FairnessReport(
        features=features,
        passed=combine([f.passed for f in features]),
        n_rows=len(df),
        config=config,
        notes=notes,
        overall=_overall(outcome, weights),
    )


# --- validation -----------------------------------------------------------------------------


def _check_config(config: FairnessConfig) -> None:
    check_common_config(config, DISPARITY_METRICS)
    if (config.prediction is None) == (config.score is None):
        raise InvalidInput(
            "Give exactly one of a prediction column (predicted class) or a score column "
            f"(with a threshold); got prediction={config.prediction!r}, score={config.score!r}."
        )
    if config.score is not None and not is_finite_number(config.threshold):
        raise InvalidInput(f"The decision threshold must be a number, not {config.threshold!r}.")


def _predicted_mask(df: pd.DataFrame, config: FairnessConfig) -> np.ndarray:
    if config.score is None:
        assert config.prediction is not None  # guaranteed by _check_config
        predicted = _binary_mask(df[config.prediction], "Prediction", config.positive_label)
        _check_same_classes(df[config.label], df[config.prediction], config)
        return predicted
    return _score_mask(df[config.score], config.threshold)


def _binary_mask(column: pd.Series, role: str, positive_label: object) -> np.ndarray:
    """True where the column holds the positive label, after checking it is binary.

    Any two values work (0/1, False/True, -1/1, "no"/"yes"), as with Fairlearn's
    `pos_label`: the positive label says which one is favourable.
    """
    check_no_missing(column, role)
    values = column.to_numpy()
    classes = pd.unique(values)
    if len(classes) > 2:
        raise InvalidInput(
            f"{role} column {column.name!r} must be binary but has {len(classes)} distinct "
            f"values: {sample(classes)}."
        )
    if len(classes) == 2 and positive_label not in set(classes):
        raise InvalidInput(
            f"{role} column {column.name!r} holds {sample(classes)}, neither of which is the "
            f"positive label {positive_label!r}: set positive_label (policy fairness."
            "positive_label, CLI --positive-label) to the favourable value."
        )
    return np.asarray(values == positive_label, dtype=bool)


def _check_same_classes(label: pd.Series, prediction: pd.Series, config: FairnessConfig) -> None:
    """Label and prediction must use the same two classes, or predictions would all be 'no'."""
    classes = set(pd.unique(label.to_numpy())) | set(pd.unique(prediction.to_numpy()))
    if len(classes) > 2:
        raise InvalidInput(
            f"Label column {label.name!r} and prediction column {prediction.name!r} use "
            f"different class values: together {sample(list(classes))}."
        )


def _score_mask(column: pd.Series, threshold: float) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise InvalidInput(
            f"Score column {column.name!r} must be numeric (e.g. a probability), "
            f"but its type is {column.dtype}."
        )
    check_no_missing(column, "Score")
    return column.to_numpy(dtype=float) >= threshold


# --- computation ----------------------------------------------------------------------------


def _confusion_counts(
    codes: np.ndarray, n_groups: int, outcome: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Shape (groups, 4): TN, FP, FN, TP per group (summed weights when weighted), as
    outcome = 2 * actual + predicted."""
    flat = np.bincount(codes * 4 + outcome, weights=weights, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4)


@dataclass(frozen=True)
class _GroupRates:
    counts: np.ndarray
    selection_rate: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    precision: np.ndarray
    accuracy: np.ndarray


def _group_rates(confusion: np.ndarray, counts: np.ndarray) -> _GroupRates:
    """Rates from (possibly weighted) confusion counts; `counts` are the rows per group."""
    tn, fp, fn, tp = confusion.T
    n = confusion.sum(axis=1)
    return _GroupRates(
        counts=counts,
        selection_rate=rate(tp + fp, n),
        tpr=rate(tp, tp + fn),
        fpr=rate(fp, fp + tn),
        precision=rate(tp, tp + fp),
        accuracy=rate(tp + tn, n),
    )


def _disparities(rates: _GroupRates, included: np.ndarray) -> dict[str, float]:
    tpr_gap = spread(rates.tpr[included])
    fpr_gap = spread(rates.fpr[included])
    gaps = [g for g in (tpr_gap, fpr_gap) if not math.isnan(g)]
    return {
        "demographic_parity_difference": spread(rates.selection_rate[included]),
        "demographic_parity_ratio": min_over_max(rates.selection_rate[included]),
        "equalized_odds_difference": max(gaps) if gaps else math.nan,
        "equal_opportunity_difference": tpr_gap,
    }


def _evaluate_feature(
    feature: Encoded, outcome: np.ndarray, weights: np.ndarray | None, config: FairnessConfig
) -> tuple[FeatureResult, list[str]]:
    rows = np.bincount(feature.codes, minlength=len(feature.labels))
    # Combinations of values that never occur together are not groups.
    occurring = rows > 0
    confusion = _confusion_counts(feature.codes, len(feature.labels), outcome, weights)
    confusion, rows = confusion[occurring], rows[occurring]
    labels = [label for label, keep in zip(feature.labels, occurring, strict=True) if keep]

    rates = _group_rates(confusion, rows)
    included = rates.counts >= config.min_group_size
    disparities = _disparities(rates, included)
    checks = [check(m, disparities[m], limit) for m, limit in config.max_disparity.items()]
    result = FeatureResult(
        name=feature.name,
        groups=_group_list(labels, rates, included),
        checks=checks,
        passed=combine([c.passed for c in checks]),
        **disparities,
    )
    return result, _feature_notes(result, rates, included, config)


def _within_control_levels(
    result: FeatureResult,
    feature: Encoded,
    control: Encoded,
    outcome: np.ndarray,
    weights: np.ndarray | None,
    config: FairnessConfig,
) -> FeatureResult:
    """The feature's disparities within each control level; the worst level is checked."""

    def disparities(within: Encoded, rows: np.ndarray) -> dict[str, float]:
        level_weights = None if weights is None else weights[rows]
        level, _ = _evaluate_feature(within, outcome[rows], level_weights, config)
        return {m: level.disparity(m) for m in DISPARITY_METRICS}

    levels = within_control_levels(feature, control, DISPARITY_METRICS, config, disparities)
    return replace(
        result,
        checks=levels.checks,
        passed=combine([c.passed for c in levels.checks]),
        by_control=levels.by_level,
        **levels.worst,
    )


def _overall(outcome: np.ndarray, weights: np.ndarray | None) -> GroupMetrics:
    confusion = np.bincount(outcome, weights=weights, minlength=4).reshape(1, 4)
    rates = _group_rates(confusion, np.array([len(outcome)]))
    return _group_list([OVERALL_GROUP], rates, np.ones(1, dtype=bool))[0]


def _group_list(labels: list[str], rates: _GroupRates, included: np.ndarray) -> list[GroupMetrics]:
    return [
        GroupMetrics(
            group=label,
            count=int(rates.counts[i]),
            selection_rate=float(rates.selection_rate[i]),
            tpr=float(rates.tpr[i]),
            fpr=float(rates.fpr[i]),
            precision=float(rates.precision[i]),
            accuracy=float(rates.accuracy[i]),
            insufficient_data=not bool(included[i]),
        )
        for i, label in enumerate(labels)
    ]


# --- notes ----------------------------------------------------------------------------------


def _global_notes(predicted: np.ndarray, config: FairnessConfig) -> list[str]:
    notes = []
    if not config.max_disparity:
        notes.append("No max_disparity thresholds are set, so nothing passes or fails.")
    n_positive = int(predicted.sum())
    if n_positive in (0, len(predicted)):
        kind = "positive" if n_positive else "negative"
        notes.append(
            f"All {len(predicted)} predictions are {kind}: every selection rate is the same, "
            "so demographic parity is not informative."
        )
    return notes


def _feature_notes(
    result: FeatureResult, rates: _GroupRates, included: np.ndarray, config: FairnessConfig
) -> list[str]:
    name = result.name
    notes = coverage_notes(name, result.groups, included, config.min_group_size)
    if not included.any():
        return notes
    notes += _undefined_rate_notes(name, result.groups, rates, included)
    notes += [
        f"{name}: {c.metric} is undefined ({result.undefined_reason(c.metric)}), so its check "
        "is not evaluated."
        for c in result.checks
        if c.passed is None
    ]
    return notes


def _undefined_rate_notes(
    name: str, groups: list[GroupMetrics], rates: _GroupRates, included: np.ndarray
) -> list[str]:
    notes = []
    for name_of_rate, values, reason, used_in in (
        ("TPR", rates.tpr, "no positive labels", "equal opportunity and equalized odds"),
        ("FPR", rates.fpr, "no negative labels", "equalized odds"),
    ):
        undefined = [
            g.group
            for g, v, inc in zip(groups, values, included, strict=True)
            if inc and math.isnan(v)
        ]
        if undefined:
            notes.append(
                f"{name}: {name_of_rate} is undefined for {', '.join(undefined)} ({reason}); "
                f"left out of {used_in}."
            )
    return notes


# --- JSON -----------------------------------------------------------------------------------


RATE_FIELDS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")


def _feature_to_dict(result: FeatureResult | RegressionFeatureResult) -> dict[str, Any]:
    data: dict[str, Any] = {m: json_number(result.disparity(m)) for m in result.metrics}
    data["passed"] = result.passed
    data["checks"] = [
        {
            "metric": c.metric,
            "value": json_number(c.value),
            "threshold": c.threshold,
            "bound": c.bound,
            "passed": c.passed,
        }
        for c in result.checks
    ]
    data["insufficient_groups"] = result.insufficient_groups
    data["groups"] = [_group_to_dict(g) for g in result.groups]
    if result.by_control:
        data["by_control"] = {
            level: {m: json_number(v) for m, v in values.items()}
            for level, values in result.by_control.items()
        }
    return data


def _group_to_dict(group: GroupMetrics | RegressionGroupMetrics) -> dict[str, Any]:
    # Rates and errors are the float fields; an undefined one becomes None.
    return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(group).items()}


def _group_from_dict(data: dict[str, Any]) -> GroupMetrics:
    return GroupMetrics(
        group=data["group"],
        count=int(data["count"]),
        **{f: number_from_json(data[f]) for f in RATE_FIELDS},
        insufficient_data=bool(data["insufficient_data"]),
    )


def _feature_from_dict(name: str, data: dict[str, Any]) -> FeatureResult:
    return FeatureResult(
        name=name,
        groups=[_group_from_dict(g) for g in data["groups"]],
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
        **{m: number_from_json(data[m]) for m in DISPARITY_METRICS},
    )

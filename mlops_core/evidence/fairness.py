"""Group fairness metrics for a binary classifier's evaluation set.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput

DISPARITY_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
# A ratio is 1 when groups are alike, so its threshold is the least acceptable value.
MINIMUM_METRICS = frozenset({"demographic_parity_ratio"})
# The rate each disparity compares: its name, the GroupMetrics field, why a group lacks it.
_RATE_OF = {
    "demographic_parity_difference": ("selection rate", "selection_rate", "no rows"),
    "demographic_parity_ratio": ("selection rate", "selection_rate", "no rows"),
    "equal_opportunity_difference": ("TPR", "tpr", "no positive labels"),
    "equalized_odds_difference": ("TPR or FPR", "tpr", "no positive labels"),
}
_METRIC_LIST = ", ".join(DISPARITY_METRICS)
MISSING_GROUP = "(missing)"
OVERALL_GROUP = "(overall)"
INTERSECTION_SEPARATOR = "&"
# Rates come from float division of counts; a gap that equals the limit in decimal must not
# fail because of the last bit.
_TOLERANCE = 1e-12


@dataclass(kw_only=True)
class FairnessConfig:
    """What to read from the evaluation frame and which disparities are acceptable."""

    label: str
    sensitive: list[str]
    prediction: str | None = None
    score: str | None = None
    threshold: float = 0.5
    min_group_size: int = 50
    max_disparity: dict[str, float] = field(default_factory=dict)
    positive_label: int | str | bool = 1
    # A column of sample weights: rates become weighted rates, as with Fairlearn's
    # `sample_params={"sample_weight": ...}`; group counts and min_group_size stay row counts.
    weight: str | None = None
    # A control column: each disparity is computed within each of its levels, as Fairlearn's
    # MetricFrame(control_features=...) does, and the feature reports the worst level.
    control: str | None = None


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


@dataclass(frozen=True)
class DisparityCheck:
    """One threshold applied to one disparity; ``passed`` is None when the value is undefined."""

    metric: str
    value: float
    threshold: float
    passed: bool | None

    @property
    def bound(self) -> str:
        return "min" if self.metric in MINIMUM_METRICS else "max"


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

    features: list[FeatureResult]
    passed: bool | None
    n_rows: int
    config: FairnessConfig
    notes: list[str]
    overall: GroupMetrics

    def feature(self, name: str) -> FeatureResult:
        for result in self.features:
            if result.name == name:
                return result
        raise InvalidInput(
            f"No fairness result for {name!r}; there are: {[f.name for f in self.features]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; undefined numbers become None."""
        return {
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
            return cls(
                features=[_feature_from_dict(n, d) for n, d in data["features"].items()],
                passed=data["passed"],
                n_rows=int(data["n_rows"]),
                config=FairnessConfig(**data["config"]),
                notes=list(data["notes"]),
                overall=_group_from_dict(data["overall"]),
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
    _check_config(config)
    _check_frame(df, config)
    actual = _binary_mask(df[config.label], "Label", config.positive_label)
    predicted = _predicted_mask(df, config)
    # One small integer per row, so a single bincount per feature yields the confusion counts.
    outcome = actual.astype(np.int8) * 2 + predicted.astype(np.int8)
    weights = None if config.weight is None else _weights(df[config.weight])

    encoded = [_encode(df[name]) for name in config.sensitive]
    if len(encoded) > 1:
        encoded.append(_intersect(encoded, INTERSECTION_SEPARATOR.join(config.sensitive)))

    notes = _global_notes(predicted, config)
    control = None if config.control is None else _encode(df[config.control])
    features = []
    for feature in encoded:
        result, feature_notes = _evaluate_feature(feature, outcome, weights, config)
        if control is not None:
            result = _within_control_levels(result, feature, control, outcome, weights, config)
            feature_notes.append(
                f"{feature.name}: disparities are computed within each level of "
                f"{config.control} ({len(result.by_control)} levels); the worst level is checked."
            )
        features.append(result)
        notes.extend(feature_notes)
    return FairnessReport(
        features=features,
        passed=_combine([f.passed for f in features]),
        n_rows=len(df),
        config=config,
        notes=notes,
        overall=_overall(outcome, weights),
    )


# --- validation -----------------------------------------------------------------------------


def _check_config(config: FairnessConfig) -> None:
    sensitive = config.sensitive
    if isinstance(sensitive, str) or not sensitive:
        raise InvalidInput("Name at least one sensitive column, as a list (e.g. ['gender']).")
    duplicates = sorted({c for c in sensitive if sensitive.count(c) > 1})
    if duplicates:
        raise InvalidInput(f"Sensitive columns are listed more than once: {duplicates}.")
    if (config.prediction is None) == (config.score is None):
        raise InvalidInput(
            "Give exactly one of a prediction column (predicted class) or a score column "
            f"(with a threshold); got prediction={config.prediction!r}, score={config.score!r}."
        )
    if config.score is not None and not _is_finite_number(config.threshold):
        raise InvalidInput(f"The decision threshold must be a number, not {config.threshold!r}.")
    if isinstance(config.min_group_size, bool) or not isinstance(config.min_group_size, int):
        raise InvalidInput(f"min_group_size must be an integer, not {config.min_group_size!r}.")
    if config.min_group_size < 1:
        raise InvalidInput(f"min_group_size must be at least 1, not {config.min_group_size}.")
    for metric, limit in config.max_disparity.items():
        if metric not in DISPARITY_METRICS:
            raise InvalidInput(
                f"Unknown disparity metric {metric!r} in max_disparity; use {_METRIC_LIST}."
            )
        if not _is_finite_number(limit) or limit < 0:
            raise InvalidInput(f"The threshold for {metric} must be a number >= 0, not {limit!r}.")


def _is_finite_number(value: object) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_frame(df: pd.DataFrame, config: FairnessConfig) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(f"Fairness needs a pandas DataFrame, not {type(df).__name__}.")
    if len(df) == 0:
        raise InvalidInput("The evaluation data is empty (0 rows); there is nothing to evaluate.")
    roles = [("Label", config.label), ("Prediction", config.prediction), ("Score", config.score)]
    roles += [("Weight", config.weight), ("Control", config.control)]
    roles += [("Sensitive", name) for name in config.sensitive]
    for role, column in roles:
        if column is not None and column not in df.columns:
            raise InvalidInput(
                f"{role} column {column!r} is not in the data; columns are: {_column_list(df)}."
            )


def _column_list(df: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in df.columns[:limit]]
    more = len(df.columns) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


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
    _check_no_missing(column, role)
    values = column.to_numpy()
    classes = pd.unique(values)
    if len(classes) > 2:
        raise InvalidInput(
            f"{role} column {column.name!r} must be binary but has {len(classes)} distinct "
            f"values: {_sample(classes)}."
        )
    if len(classes) == 2 and positive_label not in set(classes):
        raise InvalidInput(
            f"{role} column {column.name!r} holds {_sample(classes)}, neither of which is the "
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
            f"different class values: together {_sample(list(classes))}."
        )


def _score_mask(column: pd.Series, threshold: float) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise InvalidInput(
            f"Score column {column.name!r} must be numeric (e.g. a probability), "
            f"but its type is {column.dtype}."
        )
    _check_no_missing(column, "Score")
    return column.to_numpy(dtype=float) >= threshold


def _check_no_missing(column: pd.Series, role: str) -> None:
    missing = int(column.isna().sum())
    if missing:
        raise InvalidInput(
            f"{role} column {column.name!r} has {missing} missing value(s); "
            "drop or fill those rows first."
        )


def _sample(values: Sequence[object] | np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


# --- computation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoded:
    """A sensitive feature as one integer code per row; labels[code] names the group."""

    name: str
    codes: np.ndarray
    labels: list[str]


def _encode(column: pd.Series) -> _Encoded:
    # Recoding the -1 sentinel ourselves is about twice as fast on strings as
    # use_na_sentinel=False, which runs a separate isna pass over the column.
    codes, uniques = pd.factorize(column, sort=True)
    labels = [str(u) for u in uniques]
    if codes.min() < 0:
        if MISSING_GROUP in labels:
            raise InvalidInput(
                f"Sensitive column {column.name!r} has missing values and also the value "
                f"{MISSING_GROUP!r}, so the two could not be told apart; rename that value."
            )
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING_GROUP)
    return _Encoded(str(column.name), codes, labels)


def _intersect(features: list[_Encoded], name: str) -> _Encoded:
    codes, labels = features[0].codes, features[0].labels
    for other in features[1:]:
        width = len(other.labels)
        combined = codes * width + other.codes
        product = len(labels) * width
        # Renumber once the cartesian product outgrows the data, so bincount stays small
        # (and codes * width cannot overflow at the next step).
        if product > len(combined):
            combined, present = pd.factorize(combined, sort=True)
        else:
            present = np.arange(product)
        labels = [
            f"{labels[k // width]}{INTERSECTION_SEPARATOR}{other.labels[k % width]}"
            for k in present
        ]
        codes = combined
    return _Encoded(name, codes, labels)


def _weights(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InvalidInput(
            f"Weight column {column.name!r} must hold finite numbers >= 0 in every row."
        )
    return values


def _confusion_counts(
    codes: np.ndarray, n_groups: int, outcome: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Shape (groups, 4): TN, FP, FN, TP per group (summed weights when weighted), as
    outcome = 2 * actual + predicted."""
    flat = np.bincount(codes * 4 + outcome, weights=weights, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4)


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


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
        selection_rate=_rate(tp + fp, n),
        tpr=_rate(tp, tp + fn),
        fpr=_rate(fp, fp + tn),
        precision=_rate(tp, tp + fp),
        accuracy=_rate(tp + tn, n),
    )


def _spread(values: np.ndarray) -> float:
    # A disparity compares groups: with fewer than two defined it is undefined, not 0
    # (Fairlearn returns 0 for one group, and a maximum threshold would then pass).
    defined = values[~np.isnan(values)]
    return float(defined.max() - defined.min()) if len(defined) >= 2 else math.nan


def _min_over_max(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    if len(defined) < 2 or defined.max() == 0:
        return math.nan
    return float(defined.min() / defined.max())


def _disparities(rates: _GroupRates, included: np.ndarray) -> dict[str, float]:
    tpr_gap = _spread(rates.tpr[included])
    fpr_gap = _spread(rates.fpr[included])
    gaps = [g for g in (tpr_gap, fpr_gap) if not math.isnan(g)]
    return {
        "demographic_parity_difference": _spread(rates.selection_rate[included]),
        "demographic_parity_ratio": _min_over_max(rates.selection_rate[included]),
        "equalized_odds_difference": max(gaps) if gaps else math.nan,
        "equal_opportunity_difference": tpr_gap,
    }


def _check(metric: str, value: float, limit: float) -> DisparityCheck:
    if math.isnan(value):
        passed = None
    elif metric in MINIMUM_METRICS:
        passed = value >= limit - _TOLERANCE
    else:
        passed = value <= limit + _TOLERANCE
    return DisparityCheck(metric=metric, value=value, threshold=float(limit), passed=passed)


def _combine(outcomes: list[bool | None]) -> bool | None:
    """False if anything failed, None if nothing was evaluated, else True."""
    if any(o is False for o in outcomes):
        return False
    if all(o is None for o in outcomes):
        return None
    return True


def _evaluate_feature(
    feature: _Encoded, outcome: np.ndarray, weights: np.ndarray | None, config: FairnessConfig
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
    checks = [_check(m, disparities[m], limit) for m, limit in config.max_disparity.items()]
    result = FeatureResult(
        name=feature.name,
        groups=_group_list(labels, rates, included),
        checks=checks,
        passed=_combine([c.passed for c in checks]),
        **disparities,
    )
    return result, _feature_notes(result, rates, included, config)


def _worst(metric: str, values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    if not defined:
        return math.nan
    return min(defined) if metric in MINIMUM_METRICS else max(defined)


def _within_control_levels(
    result: FeatureResult,
    feature: _Encoded,
    control: _Encoded,
    outcome: np.ndarray,
    weights: np.ndarray | None,
    config: FairnessConfig,
) -> FeatureResult:
    """The feature's disparities within each control level; the worst level is checked.

    A difference between groups that only reflects a difference between control levels
    (say, regions with different base rates) does not count against the model.
    """
    by_control: dict[str, dict[str, float]] = {}
    for code, level in enumerate(control.labels):
        rows = control.codes == code
        if not rows.any():
            continue
        within = _Encoded(feature.name, feature.codes[rows], feature.labels)
        level_result, _ = _evaluate_feature(
            within, outcome[rows], None if weights is None else weights[rows], config
        )
        by_control[level] = {m: level_result.disparity(m) for m in DISPARITY_METRICS}
    worst = {m: _worst(m, [d[m] for d in by_control.values()]) for m in DISPARITY_METRICS}
    checks = [_check(m, worst[m], limit) for m, limit in config.max_disparity.items()]
    return replace(
        result,
        checks=checks,
        passed=_combine([c.passed for c in checks]),
        by_control=by_control,
        **worst,
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
    notes = []
    small = [g for g in result.groups if g.insufficient_data]
    if small:
        listed = ", ".join(f"{g.group} ({g.count})" for g in small)
        notes.append(
            f"{name}: {len(small)} group(s) with fewer than {config.min_group_size} rows are "
            f"left out of the disparities: {listed}."
        )
    n_included = int(included.sum())
    if n_included == 0:
        notes.append(f"{name}: no group has enough rows, so no disparity is computed.")
        return notes
    if n_included == 1:
        notes.append(
            f"{name}: only one group is compared, so no disparity is defined and every "
            "check on it is not evaluated."
        )
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
    for rate, values, reason, used_in in (
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
                f"{name}: {rate} is undefined for {', '.join(undefined)} ({reason}); "
                f"left out of {used_in}."
            )
    return notes


# --- JSON -----------------------------------------------------------------------------------


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _number_from_json(value: float | None) -> float:
    return math.nan if value is None else float(value)


_RATE_FIELDS = ("selection_rate", "tpr", "fpr", "precision", "accuracy")


def _feature_to_dict(result: FeatureResult) -> dict[str, Any]:
    data: dict[str, Any] = {m: _json_number(result.disparity(m)) for m in DISPARITY_METRICS}
    data["passed"] = result.passed
    data["checks"] = [
        {
            "metric": c.metric,
            "value": _json_number(c.value),
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
            level: {m: _json_number(v) for m, v in values.items()}
            for level, values in result.by_control.items()
        }
    return data


def _group_to_dict(group: GroupMetrics) -> dict[str, Any]:
    return {
        "group": group.group,
        "count": group.count,
        **{f: _json_number(getattr(group, f)) for f in _RATE_FIELDS},
        "insufficient_data": group.insufficient_data,
    }


def _group_from_dict(data: dict[str, Any]) -> GroupMetrics:
    return GroupMetrics(
        group=data["group"],
        count=int(data["count"]),
        **{f: _number_from_json(data[f]) for f in _RATE_FIELDS},
        insufficient_data=bool(data["insufficient_data"]),
    )


def _feature_from_dict(name: str, data: dict[str, Any]) -> FeatureResult:
    return FeatureResult(
        name=name,
        groups=[_group_from_dict(g) for g in data["groups"]],
        checks=[
            DisparityCheck(
                metric=c["metric"],
                value=_number_from_json(c["value"]),
                threshold=float(c["threshold"]),
                passed=c["passed"],
            )
            for c in data["checks"]
        ],
        passed=data["passed"],
        by_control={
            level: {m: _number_from_json(v) for m, v in values.items()}
            for level, values in data.get("by_control", {}).items()
        },
        **{m: _number_from_json(data[m]) for m in DISPARITY_METRICS},
    )

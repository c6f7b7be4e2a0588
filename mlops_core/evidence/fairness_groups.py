"""What classifier and regressor fairness share: the settings, sensitive columns as group
codes (missing values as a group of their own, intersections), sample weights, disparities
between groups and threshold checks.

A disparity compares groups: the largest difference (max - min) or the ratio min / max over
the groups large enough to compare whose value is defined, as Fairlearn's
``MetricFrame.difference()`` and ``.ratio()`` with ``method="between_groups"``; with fewer than
two such groups it is undefined (NaN), not 0. Differences are maxima in the policy, ratios
minima (1.0 is parity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput
from mlops_core.policy import FAIRNESS_RATIOS

MISSING_GROUP = "(missing)"
OVERALL_GROUP = "(overall)"
INTERSECTION_SEPARATOR = "&"
# A ratio is 1 when groups are alike, so its threshold is the least acceptable value.
MINIMUM_METRICS = FAIRNESS_RATIOS
# Rates come from float division of counts; a gap that equals the limit in decimal must not
# fail because of the last bit.
TOLERANCE = 1e-12
FairnessTask = Literal["classification", "regression"]


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
    # A regressor's fairness compares mean predictions, mean labels and errors between
    # groups; `prediction` then holds the predicted value (score, threshold and
    # positive_label do not apply).
    task: FairnessTask = "classification"


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


def is_finite_number(value: object) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def column_list(df: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in df.columns[:limit]]
    more = len(df.columns) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def check_no_missing(column: pd.Series, role: str) -> None:
    missing = int(column.isna().sum())
    if missing:
        raise InvalidInput(
            f"{role} column {column.name!r} has {missing} missing value(s); "
            "drop or fill those rows first."
        )


def sample(values: Sequence[object] | np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


@dataclass(frozen=True)
class Encoded:
    """A sensitive feature as one integer code per row; labels[code] names the group."""

    name: str
    codes: np.ndarray
    labels: list[str]


def encode(column: pd.Series) -> Encoded:
    # Recoding the -1 sentinel ourselves is about twice as fast on strings as
    # use_na_sentinel=False, which runs a separate isna pass over the column.
    codes, uniques = pd.factorize(column, sort=True)
    labels = [group_label(u) for u in uniques]
    if codes.min() < 0:
        if MISSING_GROUP in labels:
            raise InvalidInput(
                f"Sensitive column {column.name!r} has missing values and also the value "
                f"{MISSING_GROUP!r}, so the two could not be told apart; rename that value."
            )
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING_GROUP)
    return Encoded(str(column.name), codes, labels)


def group_label(value: object) -> str:
    """A group's name as a person reads it: True / False, 0 / 1 for a 0/1 column that gaps
    turned into floats, a category's own text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def intersect(features: list[Encoded], name: str) -> Encoded:
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
    return Encoded(name, codes, labels)


def weights_of(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InvalidInput(
            f"Weight column {column.name!r} must hold finite numbers >= 0 in every row."
        )
    return values


def rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def spread(values: np.ndarray) -> float:
    # A disparity compares groups: with fewer than two defined it is undefined, not 0
    # (Fairlearn returns 0 for one group, and a maximum threshold would then pass).
    defined = values[~np.isnan(values)]
    return float(defined.max() - defined.min()) if len(defined) >= 2 else math.nan


def min_over_max(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    if len(defined) < 2 or defined.max() == 0:
        return math.nan
    return float(defined.min() / defined.max())


def check(metric: str, value: float, limit: float) -> DisparityCheck:
    if math.isnan(value):
        passed = None
    elif metric in MINIMUM_METRICS:
        passed = value >= limit - TOLERANCE
    else:
        passed = value <= limit + TOLERANCE
    return DisparityCheck(metric=metric, value=value, threshold=float(limit), passed=passed)


def combine(outcomes: list[bool | None]) -> bool | None:
    """False if anything failed, None if nothing was evaluated, else True."""
    if any(o is False for o in outcomes):
        return False
    if all(o is None for o in outcomes):
        return None
    return True


def worst(metric: str, values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    if not defined:
        return math.nan
    return min(defined) if metric in MINIMUM_METRICS else max(defined)


def json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def number_from_json(value: float | None) -> float:
    return math.nan if value is None else float(value)


def check_common_config(config: FairnessConfig, metrics: Sequence[str]) -> None:
    """The settings every task shares: sensitive columns, group size, thresholds."""
    sensitive = config.sensitive
    if isinstance(sensitive, str) or not sensitive:
        raise InvalidInput("Name at least one sensitive column, as a list (e.g. ['gender']).")
    duplicates = sorted({c for c in sensitive if sensitive.count(c) > 1})
    if duplicates:
        raise InvalidInput(f"Sensitive columns are listed more than once: {duplicates}.")
    if isinstance(config.min_group_size, bool) or not isinstance(config.min_group_size, int):
        raise InvalidInput(f"min_group_size must be an integer, not {config.min_group_size!r}.")
    if config.min_group_size < 1:
        raise InvalidInput(f"min_group_size must be at least 1, not {config.min_group_size}.")
    for metric, limit in config.max_disparity.items():
        if metric not in metrics:
            raise InvalidInput(
                f"Unknown disparity metric {metric!r} in max_disparity for a {config.task} "
                f"model; use {', '.join(metrics)}."
            )
        if not is_finite_number(limit) or limit < 0:
            raise InvalidInput(f"The threshold for {metric} must be a number >= 0, not {limit!r}.")


def check_frame(df: pd.DataFrame, config: FairnessConfig) -> None:
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
                f"{role} column {column!r} is not in the data; columns are: {column_list(df)}."
            )


def sensitive_codes(df: pd.DataFrame, config: FairnessConfig) -> list[Encoded]:
    """Each sensitive column as group codes and, with two or more, their intersection."""
    encoded = [encode(df[name]) for name in config.sensitive]
    if len(encoded) > 1:
        encoded.append(intersect(encoded, INTERSECTION_SEPARATOR.join(config.sensitive)))
    return encoded


def control_note(feature: str, config: FairnessConfig, n_levels: int) -> str:
    return (
        f"{feature}: disparities are computed within each level of {config.control} "
        f"({n_levels} levels); the worst level is checked."
    )


@dataclass(frozen=True)
class ControlLevels:
    """Disparities of one feature within each control level, and the worst of each."""

    by_level: dict[str, dict[str, float]]
    worst: dict[str, float]
    checks: list[DisparityCheck]


def within_control_levels(
    feature: Encoded,
    control: Encoded,
    metrics: Sequence[str],
    config: FairnessConfig,
    disparities: Callable[[Encoded, np.ndarray], dict[str, float]],
) -> ControlLevels:
    """`disparities(feature_within_level, rows_of_level)` for each level of the control
    column, as Fairlearn's MetricFrame(control_features=...) does, and the checks on the
    worst level. A difference between groups that only reflects a difference between control
    levels (say, regions with different base rates) does not count against the model."""
    by_level: dict[str, dict[str, float]] = {}
    for code, level in enumerate(control.labels):
        rows = control.codes == code
        if rows.any():
            within = Encoded(feature.name, feature.codes[rows], feature.labels)
            by_level[level] = disparities(within, rows)
    worst_values = {m: worst(m, [d[m] for d in by_level.values()]) for m in metrics}
    checks = [check(m, worst_values[m], limit) for m, limit in config.max_disparity.items()]
    return ControlLevels(by_level, worst_values, checks)


def coverage_notes(
    name: str, groups: Sequence[Any], included: np.ndarray, min_group_size: int
) -> list[str]:
    """What a reviewer must know about which groups a feature's disparities compare: the
    groups left out as too small, and when fewer than two remain."""
    notes = []
    small = [g for g in groups if g.insufficient_data]
    if small:
        listed = ", ".join(f"{g.group} ({g.count})" for g in small)
        notes.append(
            f"{name}: {len(small)} group(s) with fewer than {min_group_size} rows are "
            f"left out of the disparities: {listed}."
        )
    n_included = int(included.sum())
    if n_included == 0:
        notes.append(f"{name}: no group has enough rows, so no disparity is computed.")
    elif n_included == 1:
        notes.append(
            f"{name}: only one group is compared, so no disparity is defined and every "
            "check on it is not evaluated."
        )
    return notes

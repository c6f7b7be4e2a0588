"""Quality of the challenger against the champion on labelled live rows.

The quality guardrail asks one function, `QualityComparison`: given the labelled rows of
each version and the metric, is the challenger better, worse or not distinguishably
different? `compare_unpaired` answers with an unpaired bootstrap: each version's rows are
resampled on their own (in split mode they are different requests), the metric is computed
on every resample with scikit-learn (ROC AUC through ranks, equal to sklearn's to 1e-9),
and the percentile interval of the difference decides. Any function of the same shape can
take its place (a paired comparison for shadow traffic, say).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn import metrics as skm

from mlops_core.errors import InvalidInput
from mlops_core.policy import Direction

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no_difference"
BOOTSTRAP_SAMPLES = 500
CONFIDENCE = 0.95
SEED = 0

# metric -> (the column it scores, sklearn's function of (labels, that column))
_METRICS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    "roc_auc": ("score", skm.roc_auc_score),
    "log_loss": ("score", lambda y, s: skm.log_loss(y, s, labels=[0, 1])),
    "accuracy": ("prediction", skm.accuracy_score),
    "f1": ("prediction", lambda y, p: skm.f1_score(y, p, zero_division=0)),
    "precision": ("prediction", lambda y, p: skm.precision_score(y, p, zero_division=0)),
    "recall": ("prediction", lambda y, p: skm.recall_score(y, p, zero_division=0)),
    "mae": ("prediction", skm.mean_absolute_error),
    "rmse": ("prediction", lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p)))),
    "r2": ("prediction", skm.r2_score),
}
SUPPORTED_METRICS = tuple(_METRICS)


@dataclass(frozen=True)
class QualityVerdict:
    metric: str
    verdict: str  # better | worse | no_difference
    champion_value: float
    challenger_value: float
    # challenger - champion, in the metric's units, with its confidence interval
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n_champion: int
    n_challenger: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# (champion rows, challenger rows, metric, direction) -> verdict; rows hold `label` and
# the metric's column.
QualityComparison = Callable[[pd.DataFrame, pd.DataFrame, str, Direction], QualityVerdict]


def metric_column(metric: str) -> str:
    if metric not in _METRICS:
        raise InvalidInput(
            f"No live comparison for metric {metric!r}; one of {', '.join(SUPPORTED_METRICS)}."
        )
    return _METRICS[metric][0]


def metric_value(metric: str, labels: np.ndarray, values: np.ndarray) -> float:
    return float(_METRICS[metric][1](labels, values))


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of (resamples x rows) arrays, via the Mann-Whitney U statistic;
    NaN for a resample with one class only."""
    ranks = rankdata(scores, axis=1)
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    u = (ranks * labels).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((positives > 0) & (negatives > 0), u / (positives * negatives), np.nan)


def _resampled(metric: str, labels: np.ndarray, values: np.ndarray, rng: np.random.Generator):
    picks = rng.integers(0, len(labels), size=(BOOTSTRAP_SAMPLES, len(labels)))
    if metric == "roc_auc":
        return _auc_rows(labels[picks], values[picks])
    out = np.empty(BOOTSTRAP_SAMPLES)
    for i, pick in enumerate(picks):
        try:
            out[i] = metric_value(metric, labels[pick], values[pick])
        except ValueError:
            out[i] = np.nan
    return out


def compare_unpaired(
    champion: pd.DataFrame, challenger: pd.DataFrame, metric: str, direction: Direction
) -> QualityVerdict:
    column = metric_column(metric)
    sides = []
    for frame in (champion, challenger):
        rows = frame[["label", column]].dropna()
        sides.append((rows["label"].to_numpy(dtype=float), rows[column].to_numpy(dtype=float)))
    (y0, v0), (y1, v1) = sides
    if min(len(y0), len(y1)) == 0:
        raise InvalidInput("No labelled rows to compare for one of the versions.")
    rng = np.random.default_rng(SEED)
    differences = _resampled(metric, y1, v1, rng) - _resampled(metric, y0, v0, rng)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = (float(x) for x in np.nanpercentile(differences, [tail, 100 - tail]))
    champion_value, challenger_value = metric_value(metric, y0, v0), metric_value(metric, y1, v1)
    return QualityVerdict(
        metric=metric,
        verdict=_verdict(low, high, direction),
        champion_value=champion_value,
        challenger_value=challenger_value,
        difference=challenger_value - champion_value,
        ci_low=low,
        ci_high=high,
        confidence=CONFIDENCE,
        n_champion=len(y0),
        n_challenger=len(y1),
        method=f"unpaired bootstrap, {BOOTSTRAP_SAMPLES} resamples, percentile interval",
    )


def _verdict(low: float, high: float, direction: Direction) -> str:
    # The interval is of challenger - champion; for "lower is better" a rise is worse.
    if direction == "lower":
        low, high = -high, -low
    if high < 0:
        return WORSE
    if low > 0:
        return BETTER
    return NO_DIFFERENCE

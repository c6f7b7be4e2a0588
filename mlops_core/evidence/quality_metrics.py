"""Quality metrics of labelled predictions, equal to scikit-learn's, as functions of sums.

Every metric is computed from per-row statistics summed over blocks of rows: the point
estimate sums every block, a bootstrap replicate sums the blocks it drew (with repeats).
For the metrics that are ratios of sums (F1, precision, recall, accuracy, log loss, Brier
score, expected calibration error, RMSE, MAE, R², mean error) a replicate is the metric of
the resampled rows exactly. ROC AUC and PR AUC are not sums of rows: their replicates are
their first-order (influence-function) expansion, the point estimate plus the summed
influence of the drawn rows. For ROC AUC that expansion is DeLong's, so the bootstrap and
DeLong's test agree on its variance.

Departures from scikit-learn, by design: a metric that is undefined on the rows (ROC AUC
with one class, R² of a constant label...) is NaN where scikit-learn raises or warns;
precision, recall and F1 with a zero denominator are 0, as scikit-learn's default
`zero_division` gives. Log loss clips scores to [eps, 1 - eps] like scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops_core.policy import (
    CLASSIFICATION_QUALITY_METRICS,
    REGRESSION_QUALITY_METRICS,
    Direction,
    metric_direction,
)

ECE_BINS = 10
EPS = float(np.finfo(np.float64).eps)
# Columns of a classifier's statistics; the calibration bins follow them.
_N, _Y, _PRED, _TP, _LOG_LOSS, _BRIER, _AUC_IF, _AP_IF = range(8)
_CLASSIFIER_SCALARS = 8
CLASSIFIER_WIDTH = _CLASSIFIER_SCALARS + 2 * ECE_BINS
# A regressor's: count, error (prediction - label), squared error, absolute error, label and
# squared label, both centred on the label mean so that R² keeps its precision.
_E, _E2, _AE, _YC, _YC2 = range(1, 6)
REGRESSOR_WIDTH = 6


def quality_direction(metric: str) -> Direction:
    """Lower is better for the losses and errors; mean error is judged by its size."""
    return "lower" if metric == "mean_error" else metric_direction(metric)


def goodness_of(metric: str, value: np.ndarray | float) -> np.ndarray | float:
    """A number that grows as `value` gets better: compare these, not values."""
    if metric == "mean_error":
        return -np.abs(value)
    return value if quality_direction(metric) == "higher" else -np.asarray(value)


@dataclass(frozen=True)
class RankedScores:
    """Scores grouped by distinct value (ascending) with the label counts at each."""

    inverse: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray

    @property
    def n_positive(self) -> float:
        return float(self.positives.sum())

    @property
    def n_negative(self) -> float:
        return float(self.negatives.sum())


def rank_scores(scores: np.ndarray, labels: np.ndarray) -> RankedScores:
    levels, inverse = np.unique(scores, return_inverse=True)
    positives = np.bincount(inverse, weights=labels, minlength=len(levels))
    totals = np.bincount(inverse, minlength=len(levels)).astype(float)
    return RankedScores(inverse, positives, totals - positives)


@dataclass(frozen=True)
class Placements:
    """DeLong's placement values: for each positive row the share of negatives it outranks
    (ties count half), for each negative row the share of positives that outrank it."""

    auc: float
    positive: np.ndarray
    negative: np.ndarray


def placements(ranked: RankedScores, labels: np.ndarray) -> Placements:
    pos, neg = ranked.positives, ranked.negatives
    n_pos, n_neg = ranked.n_positive, ranked.n_negative
    if n_pos == 0 or n_neg == 0:
        return Placements(float("nan"), np.full(int(n_pos), np.nan), np.full(int(n_neg), np.nan))
    below = np.cumsum(neg) - neg + 0.5 * neg
    above = n_pos - np.cumsum(pos) + 0.5 * pos
    auc = float((pos * below).sum() / (n_pos * n_neg))
    positive = labels == 1
    return Placements(
        auc,
        (below / n_neg)[ranked.inverse[positive]],
        (above / n_pos)[ranked.inverse[~positive]],
    )


def _rank_metrics(
    ranked: RankedScores, labels: np.ndarray
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """ROC AUC and PR AUC (average precision) with each row's influence on them."""
    pos, neg = ranked.positives, ranked.negatives
    n_pos, n_neg = ranked.n_positive, ranked.n_negative
    positive = labels == 1
    if n_pos == 0:
        nan = np.full(len(labels), np.nan)
        return float("nan"), float("nan"), nan, nan
    # Rows scoring at or above each level: the predicted positives at that threshold.
    above_pos = n_pos - (np.cumsum(pos) - pos)
    above_neg = n_neg - (np.cumsum(neg) - neg)
    precision = above_pos / (above_pos + above_neg)
    ap = float((pos * precision).sum() / n_pos)
    # d AP / d w_k of a row at level m: its own precision term and its effect on the
    # precision of every positive it ties with or outranks.
    squared = (above_pos + above_neg) ** 2
    gain = np.cumsum(pos * above_neg / squared)
    loss = np.cumsum(pos * above_pos / squared)
    ap_influence = np.where(
        positive,
        ((precision - ap + gain) / n_pos)[ranked.inverse],
        (-loss / n_pos)[ranked.inverse],
    )
    if n_neg == 0:
        return float("nan"), ap, np.full(len(labels), np.nan), ap_influence
    below = (np.cumsum(neg) - neg + 0.5 * neg) / n_neg
    over = (n_pos - np.cumsum(pos) + 0.5 * pos) / n_pos
    auc = float((pos * below).sum() / n_pos)
    auc_influence = np.where(
        positive,
        ((below - auc) / n_pos)[ranked.inverse],
        ((over - auc) / n_neg)[ranked.inverse],
    )
    return auc, ap, auc_influence, ap_influence


@dataclass(frozen=True)
class MetricSums:
    """Per-block sums of a version's row statistics, and the rank metrics' point values."""

    task: str
    blocks: np.ndarray  # (n_blocks, width)
    roc_auc: float = float("nan")
    pr_auc: float = float("nan")
    # The scores grouped by value, kept for DeLong's test on the same rows.
    ranked: RankedScores | None = None

    def values(self) -> dict[str, float]:
        """The point estimate of every metric of the task."""
        found = metrics_from_sums(self.task, self.blocks.sum(axis=0)[None, :], self)
        values = {name: float(value[0]) for name, value in found.items()}
        if self.task != "regression":
            # Exact, not the base plus influences summing to zero up to rounding.
            values.update(roc_auc=self.roc_auc, pr_auc=self.pr_auc)
        return values

    def replicates(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric for every row of `counts` (how often each block was drawn)."""
        return metrics_from_sums(self.task, counts @ self.blocks, self)


def block_sums(
    task: str,
    labels: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray | None,
    blocks: np.ndarray,
    n_blocks: int,
) -> MetricSums:
    """The statistics of each block of rows.

    A classifier's `labels` and `predicted` are 0/1 and `scores` the positive class's
    probability (None when only predictions are logged: the score metrics are then NaN);
    a regressor's `predicted` is the predicted value.
    """

    def summed(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(blocks, weights=weights, minlength=n_blocks)

    if task == "regression":
        error = predicted - labels
        centred = labels - labels.mean()
        columns = [None, error, error**2, np.abs(error), centred, centred**2]
        return MetricSums(task, np.column_stack([summed(w) for w in columns]))
    labels = labels.astype(float)
    predicted = predicted.astype(float)
    stats = np.zeros((n_blocks, CLASSIFIER_WIDTH))
    stats[:, _N] = summed(None)
    stats[:, _Y] = summed(labels)
    stats[:, _PRED] = summed(predicted)
    stats[:, _TP] = summed(labels * predicted)
    if scores is None:
        stats[:, _LOG_LOSS:] = np.nan
        return MetricSums(task, stats)
    clipped = np.clip(scores, EPS, 1 - EPS)
    stats[:, _LOG_LOSS] = summed(-np.where(labels == 1, np.log(clipped), np.log1p(-clipped)))
    stats[:, _BRIER] = summed((scores - labels) ** 2)
    ranked = rank_scores(scores, labels)
    auc, ap, auc_influence, ap_influence = _rank_metrics(ranked, labels)
    stats[:, _AUC_IF] = summed(auc_influence)
    stats[:, _AP_IF] = summed(ap_influence)
    # sklearn.calibration.calibration_curve's uniform bins.
    bins = np.searchsorted(np.linspace(0, 1, ECE_BINS + 1)[1:-1], scores)
    cell = blocks * ECE_BINS + bins
    size = n_blocks * ECE_BINS
    label_bins = np.bincount(cell, weights=labels, minlength=size).reshape(n_blocks, ECE_BINS)
    score_bins = np.bincount(cell, weights=scores, minlength=size).reshape(n_blocks, ECE_BINS)
    stats[:, _CLASSIFIER_SCALARS : _CLASSIFIER_SCALARS + ECE_BINS] = label_bins
    stats[:, _CLASSIFIER_SCALARS + ECE_BINS :] = score_bins
    return MetricSums(task, stats, auc, ap, ranked)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def metrics_from_sums(task: str, sums: np.ndarray, base: MetricSums) -> dict[str, np.ndarray]:
    """Every metric of the task from summed statistics (one row per replicate)."""
    n = sums[:, _N]
    with np.errstate(divide="ignore", invalid="ignore"):
        if task == "regression":
            sse, centred, centred2 = sums[:, _E2], sums[:, _YC], sums[:, _YC2]
            total = centred2 - centred**2 / n
            r2 = np.where(total > 0, 1 - sse / np.where(total > 0, total, 1), np.nan)
            # sklearn: a constant label gives 1.0 for a perfect fit, 0.0 otherwise.
            r2 = np.where(total <= 0, np.where(sse == 0, 1.0, 0.0), r2)
            return {
                "rmse": np.sqrt(sse / n),
                "mae": sums[:, _AE] / n,
                "r2": r2,
                "mean_error": sums[:, _E] / n,
            }
        y, pred, tp = sums[:, _Y], sums[:, _PRED], sums[:, _TP]
        both = (y > 0) & (y < n)
        label_bins = sums[:, _CLASSIFIER_SCALARS : _CLASSIFIER_SCALARS + ECE_BINS]
        score_bins = sums[:, _CLASSIFIER_SCALARS + ECE_BINS :]
        return {
            "roc_auc": np.where(both, base.roc_auc + sums[:, _AUC_IF], np.nan),
            "pr_auc": np.where(y > 0, base.pr_auc + sums[:, _AP_IF], np.nan),
            "f1": _ratio(2 * tp, y + pred),
            "precision": _ratio(tp, pred),
            "recall": _ratio(tp, y),
            "accuracy": (n - y - pred + 2 * tp) / n,
            "log_loss": sums[:, _LOG_LOSS] / n,
            "brier_score": sums[:, _BRIER] / n,
            "ece": np.abs(label_bins - score_bins).sum(axis=1) / n,
        }


def task_metrics(task: str) -> tuple[str, ...]:
    return REGRESSION_QUALITY_METRICS if task == "regression" else CLASSIFICATION_QUALITY_METRICS


def compute_metrics(
    task: str, labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None
) -> dict[str, float]:
    """Every quality metric of the task on these rows (NaN for one that is undefined)."""
    if len(labels) == 0:
        return {name: float("nan") for name in task_metrics(task)}
    single_block = np.zeros(len(labels), dtype=np.intp)
    return block_sums(task, labels, predicted, scores, single_block, 1).values()

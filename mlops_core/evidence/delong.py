"""DeLong's test for two correlated ROC AUCs (both models scored the same labelled rows).

DeLong, DeLong & Clarke-Pearson (1988), with the placement values computed by sorting
(Sun & Xu 2014): O(n log n) instead of comparing every positive with every negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from mlops_core.errors import InvalidInput
from mlops_core.evidence.quality_metrics import RankedScores, placements, rank_scores


@dataclass(frozen=True)
class DeLongResult:
    """AUC of each model, the difference b - a, its variance and the two-sided test."""

    auc_a: float
    auc_b: float
    difference: float
    variance: float
    z: float
    p_value: float
    confidence: float
    ci_low: float
    ci_high: float

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance)


def delong_paired(
    labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, confidence: float = 0.95
) -> DeLongResult:
    """DeLong's test of AUC(b) - AUC(a) on the same rows; labels are 0/1."""
    labels = np.asarray(labels)
    return delong_ranked(
        labels,
        rank_scores(np.asarray(scores_a, dtype=float), labels),
        rank_scores(np.asarray(scores_b, dtype=float), labels),
        confidence,
    )


def delong_ranked(
    labels: np.ndarray, ranked_a: RankedScores, ranked_b: RankedScores, confidence: float = 0.95
) -> DeLongResult:
    """`delong_paired` on scores already grouped by value (`rank_scores`)."""
    n_pos = int((labels == 1).sum())
    n_neg = len(labels) - n_pos
    if n_pos < 2 or n_neg < 2:
        raise InvalidInput(
            "DeLong's test needs at least two labelled rows of each class "
            f"({n_pos} positive, {n_neg} negative)."
        )
    a = placements(ranked_a, labels)
    b = placements(ranked_b, labels)
    s10 = np.cov(np.vstack([a.positive, b.positive]))
    s01 = np.cov(np.vstack([a.negative, b.negative]))
    contrast = np.array([-1.0, 1.0])
    variance = float(contrast @ s10 @ contrast / n_pos + contrast @ s01 @ contrast / n_neg)
    difference = b.auc - a.auc
    se = math.sqrt(max(variance, 0.0))
    if se > 0:
        z = difference / se
        p_value = float(2 * norm.sf(abs(z)))
    else:
        # Identical rankings: no difference and nothing uncertain about it.
        z, p_value = (0.0, 1.0) if difference == 0 else (math.copysign(math.inf, difference), 0.0)
    half = float(norm.ppf(0.5 + confidence / 2)) * se
    return DeLongResult(
        a.auc,
        b.auc,
        difference,
        variance,
        z,
        p_value,
        confidence,
        difference - half,
        difference + half,
    )

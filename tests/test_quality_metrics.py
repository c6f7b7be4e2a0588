"""Quality metrics, DeLong's test and the live comparison against their oracles: scikit-learn,
a textbook DeLong, and a row bootstrap computed with scikit-learn per resample."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve

from mlops_core.errors import ConfigError, InvalidInput
from mlops_core.evidence.delong import delong_paired
from mlops_core.evidence.live_comparison import ComparisonConfig, compare_live, rows_needed
from mlops_core.evidence.quality_metrics import (
    _rank_metrics,
    block_sums,
    compute_metrics,
    rank_scores,
)
from mlops_core.policy import parse_policy

TOL = 1e-9


def classified(n: int, seed: int, decimals: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores with many ties (rounded scores), as real logs have."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.round(np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1), decimals)
    return labels, scores


def sklearn_metrics(labels, scores, predicted, weights=None) -> dict[str, float]:
    w = {"sample_weight": weights}
    return {
        "roc_auc": sk.roc_auc_score(labels, scores, **w),
        "pr_auc": sk.average_precision_score(labels, scores, **w),
        "f1": sk.f1_score(labels, predicted, **w),
        "precision": sk.precision_score(labels, predicted, **w),
        "recall": sk.recall_score(labels, predicted, **w),
        "accuracy": sk.accuracy_score(labels, predicted, **w),
        "log_loss": sk.log_loss(labels, scores, labels=[0, 1], **w),
        "brier_score": sk.brier_score_loss(labels, scores, **w),
    }


def expected_calibration_error(labels, scores) -> float:
    """Weighted gap between observed and predicted rates over calibration_curve's bins."""
    true, predicted = calibration_curve(labels, scores, n_bins=10)
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], scores)
    counts = np.bincount(bins, minlength=10)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(labels) * np.abs(true - predicted)))


@pytest.mark.parametrize("decimals", [2, 6])
def test_classifier_metrics_equal_sklearn(decimals: int) -> None:
    labels, scores = classified(4000, 1, decimals)
    predicted = (scores >= 0.5).astype(int)
    found = compute_metrics("classification", labels, predicted, scores)
    expected = sklearn_metrics(labels, scores, predicted)
    expected["ece"] = expected_calibration_error(labels, scores)
    for metric, value in expected.items():
        assert found[metric] == pytest.approx(value, abs=TOL), metric


def test_regressor_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    labels = rng.normal(1e4, 50, 3000)  # a large mean: R² must not lose its digits
    predicted = labels + rng.normal(3, 20, 3000)
    found = compute_metrics("regression", labels, predicted, None)
    assert found["rmse"] == pytest.approx(sk.root_mean_squared_error(labels, predicted), abs=TOL)
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(labels, predicted), abs=TOL)
    assert found["r2"] == pytest.approx(sk.r2_score(labels, predicted), abs=TOL)
    assert found["mean_error"] == pytest.approx(np.mean(predicted - labels), abs=TOL)


def test_undefined_metrics_are_nan_not_errors() -> None:
    labels = np.ones(10)
    found = compute_metrics("classification", labels, labels, np.full(10, 0.7))
    assert math.isnan(found["roc_auc"])
    assert found["accuracy"] == 1.0 and found["pr_auc"] == 1.0
    constant = compute_metrics("regression", np.full(5, 2.0), np.full(5, 2.0), None)
    assert constant["r2"] == sk.r2_score(np.full(5, 2.0), np.full(5, 2.0))


def test_a_replicate_of_the_sum_metrics_is_sklearn_on_the_drawn_rows() -> None:
    """With one row per block, drawing block i c_i times is sample_weight c_i."""
    labels, scores = classified(500, 3)
    predicted = (scores >= 0.5).astype(int)
    sums = block_sums("classification", labels, predicted, scores, np.arange(500), 500)
    counts = np.random.default_rng(4).multinomial(500, np.full(500, 1 / 500), size=3)
    replicates = sums.replicates(counts.astype(float))
    for row, weights in enumerate(counts):
        expected = sklearn_metrics(labels, scores, predicted, weights)
        for metric in ("f1", "precision", "recall", "accuracy", "log_loss", "brier_score"):
            assert replicates[metric][row] == pytest.approx(expected[metric], abs=TOL), metric


def test_rank_metric_influences_are_their_derivatives() -> None:
    """d metric / d weight of a row, against scikit-learn's weighted metric."""
    labels, scores = classified(600, 5)
    auc, ap, auc_influence, ap_influence = _rank_metrics(rank_scores(scores, labels), labels)
    assert abs(auc_influence.sum()) < TOL and abs(ap_influence.sum()) < TOL
    step = 1e-6
    for row in (0, 1, 7, 100, 599):
        weights = np.ones(len(labels))
        weights[row] += step
        d_auc = (sk.roc_auc_score(labels, scores, sample_weight=weights) - auc) / step
        d_ap = (sk.average_precision_score(labels, scores, sample_weight=weights) - ap) / step
        assert d_auc == pytest.approx(auc_influence[row], rel=1e-3, abs=1e-7)
        assert d_ap == pytest.approx(ap_influence[row], rel=1e-3, abs=1e-7)


def reference_delong(labels, scores_a, scores_b) -> tuple[float, float, float]:
    """DeLong et al. (1988) as written: every positive against every negative."""
    positive, negative = labels == 1, labels == 0

    def components(scores):
        x, y = scores[positive][:, None], scores[negative][None, :]
        psi = (x > y) + 0.5 * (x == y)
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10_a, v01_a = components(scores_a)
    auc_b, v10_b, v01_b = components(scores_b)
    m, n = positive.sum(), negative.sum()
    s10 = np.cov(v10_a, v10_b)
    s01 = np.cov(v01_a, v01_b)
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n
    return auc_a, auc_b, variance


def test_delong_equals_the_textbook_formula() -> None:
    labels, scores_a = classified(700, 6, decimals=2)
    scores_b = np.round(
        np.clip(scores_a + np.random.default_rng(7).normal(0.02, 0.1, 700), 0, 1), 2
    )
    auc_a, auc_b, variance = reference_delong(labels, scores_a, scores_b)
    found = delong_paired(labels, scores_a, scores_b)
    assert found.auc_a == pytest.approx(auc_a, abs=TOL)
    assert found.auc_b == pytest.approx(auc_b, abs=TOL)
    assert found.variance == pytest.approx(variance, abs=TOL)
    assert found.z == pytest.approx((auc_b - auc_a) / math.sqrt(variance), abs=1e-7)


def test_delong_refuses_too_few_of_a_class() -> None:
    with pytest.raises(InvalidInput, match="two labelled rows of each class"):
        delong_paired(np.array([1, 0, 0]), np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.2, 0.1]))


def inference_rows(n: int, seed: int, gain: float, shadow: bool) -> pd.DataFrame:
    """Rows of v1 and v3: in shadow both score every request, else each serves half."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    ids = np.array([f"r{i}" for i in range(n)])
    frames = []
    for version, lift in (("1", 0.25), ("3", 0.25 + gain)):
        scores = np.clip(rng.normal(0.35 + lift * labels, 0.2), 0, 1)
        rows = pd.DataFrame(
            {
                "timestamp": pd.Timestamp("2026-01-05"),
                "request_id": ids,
                "model_version": version,
                "score": scores,
                "prediction": (scores >= 0.5).astype(int),
                "label": labels,
            }
        )
        frames.append(
            rows if shadow else rows.iloc[: n // 2] if version == "1" else rows.iloc[n // 2 :]
        )
    return pd.concat(frames, ignore_index=True)


def row_bootstrap(frame: pd.DataFrame, metric, paired: bool, n: int = 250) -> np.ndarray:
    rng = np.random.default_rng(11)
    a = frame[frame.model_version == "1"]
    b = frame[frame.model_version == "3"]
    a_label, a_score = a.label.to_numpy(), a.score.to_numpy()
    b_label, b_score = b.label.to_numpy(), b.score.to_numpy()
    out = []
    for _ in range(n):
        ia = rng.integers(0, len(a), len(a))
        ib = ia if paired else rng.integers(0, len(b), len(b))
        out.append(metric(b_label[ib], b_score[ib]) - metric(a_label[ia], a_score[ia]))
    return np.array(out)


@pytest.mark.parametrize("shadow", [True, False])
def test_the_comparison_agrees_with_a_row_bootstrap(shadow: bool) -> None:
    frame = inference_rows(3000, 8, 0.05, shadow)
    found = compare_live(frame, ComparisonConfig("1", "3", n_resamples=1000))
    assert found.mode == ("shadow" if shadow else "split")
    assert found.n_pairs == (3000 if shadow else None)
    oracles = {
        "pr_auc": sk.average_precision_score,
        "brier_score": lambda labels, scores: np.mean((scores - labels) ** 2),
    }
    for metric, oracle in oracles.items():
        result = found.metric(metric)
        spread = np.std(row_bootstrap(frame, oracle, shadow), ddof=1)
        width = (result.ci_high - result.ci_low) / (2 * 1.96)
        # A different bootstrap and a different seed: the spreads agree to sampling error.
        assert width == pytest.approx(spread, rel=0.25), metric
        assert result.method == ("paired bootstrap" if shadow else "unpaired bootstrap")
    auc = found.metric("roc_auc")
    assert auc.method == ("DeLong" if shadow else "unpaired bootstrap")
    assert auc.verdict == "better" and auc.rows_needed == 0
    if shadow:
        assert auc.p_value is not None and auc.p_value < 0.05


def test_no_difference_says_how_many_rows_a_verdict_needs() -> None:
    frame = inference_rows(400, 9, 0.0, shadow=True)
    found = compare_live(frame, ComparisonConfig("1", "3", n_resamples=300)).metric("roc_auc")
    assert found.verdict == "no significant difference"
    assert found.rows_needed is None or found.rows_needed > 0
    assert rows_needed(0.01, 0.01, 0.95, 100, -0.01, 0.03) == math.ceil(100 * 1.96**2 - 100)
    assert rows_needed(0.0, 0.01, 0.95, 100, -0.01, 0.01) is None


def test_a_version_without_labelled_rows_is_a_clear_message() -> None:
    frame = inference_rows(50, 10, 0.0, shadow=True)
    frame.loc[frame.model_version == "3", "label"] = None
    with pytest.raises(InvalidInput, match="v3 has no labelled rows"):
        compare_live(frame, ComparisonConfig("1", "3"))
    with pytest.raises(InvalidInput, match="no column 'model_version'"):
        compare_live(frame.drop(columns="model_version"), ComparisonConfig("1", "3"))


def test_scores_outside_zero_one_are_refused() -> None:
    frame = inference_rows(50, 12, 0.0, shadow=True)
    frame["score"] *= 10
    with pytest.raises(InvalidInput, match="outside \\[0, 1\\]"):
        compare_live(frame, ComparisonConfig("1", "3"))


def test_policy_refuses_unknown_quality_metrics_and_negative_degradation() -> None:
    with pytest.raises(ConfigError, match="unknown quality metric"):
        parse_policy("[defaults.monitoring]\nmin_metrics = { auc = 0.7 }\n", "x")
    with pytest.raises(ConfigError, match="tolerances must be >= 0"):
        parse_policy("[defaults.monitoring]\nmax_degradation = { roc_auc = -1 }\n", "x")
    with pytest.raises(ConfigError, match="unknown quality metric"):
        parse_policy("[defaults.live_comparison]\nmetric = 'gini'\n", "x")

"""Fairness of a regressor against Fairlearn's MetricFrame (to 1e-9): per-group mean
prediction, mean label, MAE and RMSE, and their between-group differences and ratios."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from mlops_core.commands.cli import main
from mlops_core.errors import InvalidInput
from mlops_core.evidence.fairness import (
    MISSING_GROUP,
    FairnessConfig,
    FairnessReport,
    evaluate_fairness,
)
from mlops_core.policy import REGRESSION_FAIRNESS_METRICS, ModelPolicy, metric_direction

TOL = 1e-9


def mean_prediction(y_true, y_pred, sample_weight=None) -> float:
    return float(np.average(y_pred, weights=sample_weight))


def mean_label(y_true, y_pred, sample_weight=None) -> float:
    return float(np.average(y_true, weights=sample_weight))


ORACLE = {
    "mean_prediction": mean_prediction,
    "mean_label": mean_label,
    "mae": mean_absolute_error,
    "rmse": root_mean_squared_error,
}


def prices(n: int, seed: int, groups: int = 3, bias: float = 5_000.0) -> pd.DataFrame:
    """House prices, predictions that overestimate group g0, and a weight per row."""
    rng = np.random.default_rng(seed)
    group = rng.choice([f"g{i}" for i in range(groups)], n, p=_skewed(groups))
    price = rng.normal(300_000, 60_000, n).clip(50_000)
    noise = rng.normal(0, 20_000, n) * (1 + (group == "g1"))
    return pd.DataFrame(
        {
            "price": price,
            "predicted": price + noise + bias * (group == "g0"),
            "neighborhood": group,
            "owner": rng.random(n) < 0.5,
            "region": rng.choice(["east", "west"], n),
            "weight": rng.random(n) * 3,
        }
    )


def _skewed(groups: int) -> list[float]:
    raw = np.arange(1, groups + 1, dtype=float)
    return list(raw / raw.sum())


def config(**changes) -> FairnessConfig:
    base = {
        "label": "price",
        "prediction": "predicted",
        "sensitive": ["neighborhood"],
        "min_group_size": 1,
        "task": "regression",
    }
    return FairnessConfig(**{**base, **changes})


def frame_oracle(df: pd.DataFrame, sensitive, weights=None, control=None) -> MetricFrame:
    params = None
    if weights is not None:
        params = {m: {"sample_weight": weights} for m in ORACLE}
    return MetricFrame(
        metrics=ORACLE,
        y_true=df["price"],
        y_pred=df["predicted"],
        sensitive_features=sensitive,
        control_features=control,
        sample_params=params,
    )


def assert_equal_to_fairlearn(feature, frame: MetricFrame) -> None:
    by_group = frame.by_group
    for group in feature.groups:
        key = tuple(group.group.split("&")) if by_group.index.nlevels > 1 else group.group
        for metric in ORACLE:
            assert getattr(group, metric) == pytest.approx(by_group.loc[key, metric], abs=TOL)
    differences, ratios = frame.difference(), frame.ratio()
    for metric in ORACLE:
        assert feature.disparity(f"{metric}_difference") == pytest.approx(
            differences[metric], abs=TOL
        )
        assert feature.disparity(f"{metric}_ratio") == pytest.approx(ratios[metric], abs=TOL)


@pytest.mark.parametrize(
    ("seed", "n", "groups"), [(0, 400, 2), (1, 1_000, 3), (2, 5_000, 6), (3, 60, 4)]
)
def test_groups_and_disparities_equal_fairlearn(seed: int, n: int, groups: int) -> None:
    df = prices(n, seed, groups)
    report = evaluate_fairness(df, config())
    feature = report.feature("neighborhood")
    assert_equal_to_fairlearn(feature, frame_oracle(df, df["neighborhood"]))
    assert [g.count for g in feature.groups] == list(df["neighborhood"].value_counts().sort_index())
    overall = frame_oracle(df, df["neighborhood"]).overall
    for metric in ORACLE:
        assert getattr(report.overall, metric) == pytest.approx(overall[metric], abs=TOL)


def test_sample_weights_equal_fairlearn_with_sample_params() -> None:
    df = prices(2_000, 4)
    feature = evaluate_fairness(df, config(weight="weight")).feature("neighborhood")
    assert_equal_to_fairlearn(feature, frame_oracle(df, df["neighborhood"], df["weight"]))


def test_an_intersection_equals_fairlearn_over_both_columns() -> None:
    df = prices(3_000, 5)
    report = evaluate_fairness(df, config(sensitive=["neighborhood", "owner"]))
    assert [f.name for f in report.features] == ["neighborhood", "owner", "neighborhood&owner"]
    assert_equal_to_fairlearn(
        report.feature("neighborhood&owner"),
        frame_oracle(df, df[["neighborhood", "owner"]].astype(str)),
    )


def test_control_levels_equal_fairlearn_and_the_worst_level_is_checked() -> None:
    df = prices(3_000, 6)
    limits = {"mae_difference": 1e9, "mae_ratio": 0.0}
    feature = evaluate_fairness(df, config(control="region", max_disparity=limits)).feature(
        "neighborhood"
    )
    frame = frame_oracle(df, df["neighborhood"], control=df["region"])
    differences, ratios = frame.difference(), frame.ratio()
    for level in ("east", "west"):
        for metric in ORACLE:
            assert feature.by_control[level][f"{metric}_difference"] == pytest.approx(
                differences.loc[level, metric], abs=TOL
            )
            assert feature.by_control[level][f"{metric}_ratio"] == pytest.approx(
                ratios.loc[level, metric], abs=TOL
            )
    assert feature.disparity("mae_difference") == pytest.approx(differences["mae"].max(), abs=TOL)
    assert feature.disparity("mae_ratio") == pytest.approx(ratios["mae"].min(), abs=TOL)


def test_thresholds_differences_are_maxima_and_ratios_minima() -> None:
    df = prices(2_000, 7)
    feature = evaluate_fairness(df, config()).feature("neighborhood")
    gap, ratio = feature.disparity("mae_difference"), feature.disparity("mae_ratio")
    strict = {"mae_difference": gap * 0.9, "mae_ratio": min(1.0, ratio * 1.1)}
    loose = {"mae_difference": gap * 1.1, "mae_ratio": ratio * 0.9}
    failed = evaluate_fairness(df, config(max_disparity=strict))
    passed = evaluate_fairness(df, config(max_disparity=loose))
    assert failed.passed is False and passed.passed is True
    assert [(c.metric, c.bound, c.passed) for c in failed.feature("neighborhood").checks] == [
        ("mae_difference", "max", False),
        ("mae_ratio", "min", False),
    ]
    assert metric_direction("mae_difference") == "lower"
    assert metric_direction("mae_ratio") == "closer_to_one"


def test_small_groups_are_left_out_as_for_classifiers() -> None:
    df = prices(1_000, 8, groups=4)
    report = evaluate_fairness(df, config(min_group_size=150, max_disparity={"rmse_ratio": 0.5}))
    feature = report.feature("neighborhood")
    assert feature.insufficient_groups == ["g0"]  # the least frequent group
    compared = df[df["neighborhood"] != "g0"]
    assert_equal_to_fairlearn(
        replace(feature, groups=[g for g in feature.groups if not g.insufficient_data]),
        frame_oracle(compared, compared["neighborhood"]),
    )
    assert any("left out of the disparities: g0" in note for note in report.notes)


def test_one_compared_group_leaves_every_check_unevaluated() -> None:
    df = prices(300, 9, groups=2)
    df["neighborhood"] = "north"
    report = evaluate_fairness(df, config(max_disparity={"mae_difference": 1.0}))
    feature = report.feature("neighborhood")
    assert report.passed is None and feature.checks[0].passed is None
    assert all(math.isnan(feature.disparity(m)) for m in REGRESSION_FAIRNESS_METRICS)
    assert "fewer than two groups" in feature.undefined_reason("mae_difference")


def test_missing_sensitive_values_are_a_group_of_their_own() -> None:
    df = prices(500, 10)
    df.loc[df.index[:40], "neighborhood"] = None
    feature = evaluate_fairness(df, config()).feature("neighborhood")
    assert MISSING_GROUP in [g.group for g in feature.groups]
    assert {g.group: g.count for g in feature.groups}[MISSING_GROUP] == 40


def test_json_round_trip_keeps_the_regression_numbers() -> None:
    df = prices(800, 11)
    report = evaluate_fairness(df, config(max_disparity={"mean_prediction_difference": 1.0}))
    data = report.to_dict()
    assert data["task"] == "regression"
    assert set(data["features"]["neighborhood"]) >= set(REGRESSION_FAIRNESS_METRICS)
    assert set(data["overall"]) == {
        "group", "count", "mean_prediction", "mean_label", "mae", "rmse", "insufficient_data"
    }  # fmt: skip
    assert FairnessReport.from_dict(data).to_dict() == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prediction": None, "score": "predicted"}, "needs the prediction column"),
        ({"max_disparity": {"demographic_parity_difference": 0.1}}, "for a regression model"),
    ],
)
def test_classifier_settings_on_a_regressor_are_refused(change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        evaluate_fairness(prices(200, 12), config(**change))


def test_non_numeric_or_missing_predictions_are_refused() -> None:
    df = prices(200, 13)
    with pytest.raises(InvalidInput, match="must hold numbers"):
        evaluate_fairness(df.assign(predicted="high"), config())
    with pytest.raises(InvalidInput, match="missing value"):
        evaluate_fairness(df.assign(predicted=df["predicted"].where(df.index > 3)), config())


def test_the_policy_accepts_regression_thresholds() -> None:
    policy = ModelPolicy.model_validate(
        {"fairness": {"thresholds": {"mae_difference": 5000.0, "rmse_ratio": 0.8}}}
    )
    assert policy.fairness is not None and set(policy.fairness.thresholds) == {
        "mae_difference",
        "rmse_ratio",
    }
    with pytest.raises(ValueError, match="unknown fairness metric"):
        ModelPolicy.model_validate({"fairness": {"thresholds": {"mae_gap": 1.0}}})


def test_the_cli_evaluates_a_regressors_file(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "panel"))
    df = prices(1_000, 14)
    path = tmp_path / "predictions.csv"
    df.to_csv(path, index=False)
    args = ["fairness", "--data", str(path), "--task", "regression", "--label", "price"]
    args += ["--pred", "predicted", "--sensitive", "neighborhood", "--min-group-size", "1"]
    expected = evaluate_fairness(df, config()).feature("neighborhood").disparity("mae_ratio")

    code = main([*args, "--max", f"mae_ratio={expected + 0.01}", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["task"] == "regression"
    feature = data["features"]["neighborhood"]
    assert feature["mae_ratio"] == pytest.approx(expected, abs=TOL)
    assert feature["checks"][0] | {"value": None} == {
        "metric": "mae_ratio",
        "value": None,
        "threshold": pytest.approx(expected + 0.01),
        "bound": "min",
        "passed": False,
    }
    assert main([*args, "--max", f"mae_ratio={expected - 0.01}"]) == 0
    text = capsys.readouterr().out
    assert "(regression)" in text and "mean prediction" in text and "RMSE" in text

    assert main(["fairness", "--model", "m", "--version", "1", "--task", "regression"]) == 2
    assert "Only --data takes --task" in capsys.readouterr().err


def test_group_names_read_as_the_data_holds_them_whatever_the_dtype() -> None:
    df = prices(400, 15)
    df["senior"] = pd.Series(np.arange(len(df)) % 2, dtype=float)  # a 0/1 flag with gaps
    df.loc[df.index[:10], "senior"] = np.nan
    df["contract"] = pd.Categorical(np.where(df.index % 3 == 0, "yearly", "monthly"))
    report = evaluate_fairness(df, config(sensitive=["senior", "owner", "contract"]))
    assert [g.group for g in report.feature("senior").groups] == ["0", "1", MISSING_GROUP]
    assert [g.group for g in report.feature("owner").groups] == ["False", "True"]
    assert [g.group for g in report.feature("contract").groups] == ["monthly", "yearly"]

"""mlops_core.evidence.fairness against Fairlearn's MetricFrame and disparity functions (to 1e-9).

Where a rate is undefined (zero denominator) the panel reports NaN and Fairlearn 0.0; those
entries are checked to be exactly that case, and disparities are then compared with Fairlearn's
own MetricFrame.difference()/ratio() over metrics that return NaN for undefined rates.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score, recall_score

from mlops_core.errors import InvalidInput
from mlops_core.evidence.fairness import (
    DISPARITY_METRICS,
    MISSING_GROUP,
    FairnessConfig,
    FairnessReport,
    FeatureResult,
    evaluate_fairness,
)

TOL = 1e-9
FAIRLEARN_METRICS = {
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "precision": precision_score,
    "accuracy": accuracy_score,
    "count": count,
}


def _fpr_or_nan(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    negatives = y_true == 0
    return float(np.mean(y_pred[negatives] == 1)) if negatives.any() else math.nan


# Fairlearn's aggregation, fed rates that are NaN (not 0) when undefined.
NAN_AWARE_METRICS = {
    "selection_rate": selection_rate,
    "tpr": lambda t, p: recall_score(t, p, zero_division=np.nan),
    "fpr": _fpr_or_nan,
}


# --- data -----------------------------------------------------------------------------------


def make_data(
    seed: int,
    n: int,
    group_counts: list[int],
    *,
    skew: float = 0.0,
    bool_labels: bool = False,
) -> pd.DataFrame:
    """Random labels and scores whose base rates depend on the groups; skew > 0 makes some
    groups rare (group k has weight exp(-skew * k))."""
    rng = np.random.default_rng(seed)
    frame = {}
    logit = rng.normal(0.0, 1.0, n)
    for i, k in enumerate(group_counts):
        weights = np.exp(-skew * np.arange(k))
        codes = rng.choice(k, size=n, p=weights / weights.sum())
        frame[f"s{i}"] = np.array([f"g{i}_{c}" for c in range(k)])[codes]
        logit += rng.normal(0.0, 0.7, k)[codes]
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    score = 1 / (1 + np.exp(-(logit + rng.normal(0.0, 1.0, n))))
    frame["label"] = label if bool_labels else label.astype(int)
    frame["score"] = score
    frame["pred"] = (score >= 0.5).astype(int)
    return pd.DataFrame(frame)


def predicted(df: pd.DataFrame, config: FairnessConfig) -> np.ndarray:
    if config.prediction is not None:
        return df[config.prediction].to_numpy().astype(int)
    return (df[config.score].to_numpy() >= config.threshold).astype(int)


def feature_columns(result: FeatureResult) -> list[str]:
    return result.name.split("&")


def fairlearn_frame(
    df: pd.DataFrame, config: FairnessConfig, columns: list[str], metrics: dict
) -> MetricFrame:
    sensitive = df[columns].fillna(MISSING_GROUP).astype(str)
    with warnings.catch_warnings():
        # precision_score warns on groups without predicted positives (and returns 0).
        warnings.simplefilter("ignore")
        return MetricFrame(
            metrics=metrics,
            y_true=df[config.label].astype(int).to_numpy(),
            y_pred=predicted(df, config),
            sensitive_features=sensitive if len(columns) > 1 else sensitive[columns[0]],
        )


def by_group_label(frame: MetricFrame) -> pd.DataFrame:
    """Fairlearn's by_group indexed like the panel's group names, without empty combinations."""
    table = frame.by_group.dropna(subset=["count"])
    labels = [
        "&".join(map(str, key)) if isinstance(key, tuple) else str(key) for key in table.index
    ]
    return table.set_axis(labels)


def included_rows(df: pd.DataFrame, result: FeatureResult) -> pd.DataFrame:
    """The rows of the groups that take part in the disparities."""
    columns = feature_columns(result)
    keys = df[columns].fillna(MISSING_GROUP).astype(str).agg("&".join, axis=1)
    kept = {g.group for g in result.groups if not g.insufficient_data}
    return df[keys.isin(kept)]


# --- comparison -----------------------------------------------------------------------------


def assert_rates_match(df: pd.DataFrame, config: FairnessConfig, result: FeatureResult) -> None:
    """Every group rate equals Fairlearn's, except undefined ones, which Fairlearn sets to 0."""
    expected = by_group_label(
        fairlearn_frame(df, config, feature_columns(result), FAIRLEARN_METRICS)
    )
    # Fairlearn sorts group names as text; the panel keeps value order, missing last.
    assert sorted(g.group for g in result.groups) == sorted(expected.index)
    for group in result.groups:
        row = expected.loc[group.group]
        assert group.count == row["count"]
        assert group.insufficient_data == (group.count < config.min_group_size)
        for name in ("selection_rate", "accuracy", "tpr", "fpr", "precision"):
            ours = getattr(group, name)
            if math.isnan(ours):
                assert name in ("tpr", "fpr", "precision"), name
                assert row[name] == 0.0, (group.group, name)
            else:
                assert ours == pytest.approx(row[name], abs=TOL), (group.group, name)


def assert_disparities_match(
    df: pd.DataFrame, config: FairnessConfig, result: FeatureResult
) -> None:
    rows = included_rows(df, result)
    columns = feature_columns(result)
    included = [g for g in result.groups if not g.insufficient_data]
    if not included:
        assert all(math.isnan(result.disparity(m)) for m in DISPARITY_METRICS)
        return
    undefined = any(math.isnan(g.tpr) or math.isnan(g.fpr) for g in included)
    if not undefined:
        # Fairlearn's public functions on the same rows give the same numbers.
        kwargs = {
            "y_true": rows[config.label].astype(int).to_numpy(),
            "y_pred": predicted(rows, config),
            "sensitive_features": rows[columns].fillna(MISSING_GROUP).astype(str),
        }
        expected = {
            "demographic_parity_difference": demographic_parity_difference(**kwargs),
            "demographic_parity_ratio": demographic_parity_ratio(**kwargs),
            "equalized_odds_difference": equalized_odds_difference(**kwargs),
            "equal_opportunity_difference": equal_opportunity_difference(**kwargs),
        }
    else:
        # Fairlearn's aggregation (which skips NaN) over rates that are NaN when undefined.
        frame = fairlearn_frame(rows, config, columns, NAN_AWARE_METRICS)
        diff, ratio = frame.difference(), frame.ratio()
        gaps = [g for g in (diff["tpr"], diff["fpr"]) if not math.isnan(g)]
        expected = {
            "demographic_parity_difference": diff["selection_rate"],
            "demographic_parity_ratio": ratio["selection_rate"],
            "equalized_odds_difference": max(gaps) if gaps else math.nan,
            "equal_opportunity_difference": diff["tpr"],
        }
    for metric, value in expected.items():
        ours = result.disparity(metric)
        if math.isnan(value):
            assert math.isnan(ours), metric
        else:
            assert ours == pytest.approx(value, abs=TOL), metric


def assert_matches_fairlearn(df: pd.DataFrame, config: FairnessConfig) -> FairnessReport:
    report = evaluate_fairness(df, config)
    expected_names = list(config.sensitive)
    if len(config.sensitive) > 1:
        expected_names.append("&".join(config.sensitive))
    assert [f.name for f in report.features] == expected_names
    for result in report.features:
        assert_rates_match(df, config, result)
        assert_disparities_match(df, config, result)
    return report


# --- agreement with Fairlearn ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "n", "groups", "skew", "min_size", "use_score"),
    [
        (0, 3000, [2, 5], 0.0, 50, False),
        (1, 5000, [3, 4], 0.0, 20, True),
        (2, 4000, [4, 3], 1.2, 100, False),
        (3, 2500, [7], 0.8, 30, True),
        (4, 6000, [2, 3, 3], 0.5, 40, True),
        (5, 800, [6, 6], 0.3, 1, False),
    ],
)
def test_metrics_match_fairlearn(seed, n, groups, skew, min_size, use_score):
    df = make_data(seed, n, groups, skew=skew)
    config = FairnessConfig(
        label="label",
        sensitive=[f"s{i}" for i in range(len(groups))],
        prediction=None if use_score else "pred",
        score="score" if use_score else None,
        threshold=0.35 if use_score else 0.5,
        min_group_size=min_size,
    )
    assert_matches_fairlearn(df, config)


def test_imbalanced_groups_are_reported_but_left_out():
    df = make_data(2, 4000, [4, 3], skew=1.2)
    config = FairnessConfig(
        label="label", prediction="pred", sensitive=["s0", "s1"], min_group_size=100
    )
    report = assert_matches_fairlearn(df, config)
    intersection = report.feature("s0&s1")
    small = intersection.insufficient_groups
    assert small, "the generated data should have small intersections"
    assert all(g.count < 100 for g in intersection.groups if g.group in small)
    assert any("left out of the disparities" in note and "s0&s1" in note for note in report.notes)


def test_boolean_labels_match_fairlearn():
    df = make_data(6, 2000, [3], bool_labels=True)
    config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"], min_group_size=10)
    assert_matches_fairlearn(df, config)


def test_named_classes_with_positive_label():
    df = make_data(7, 1500, [3])
    df["label"] = np.where(df["label"] == 1, "approved", "denied")
    df["pred"] = np.where(df["pred"] == 1, "approved", "denied")
    config = FairnessConfig(
        label="label", prediction="pred", sensitive=["s0"], positive_label="approved"
    )
    numeric = FairnessConfig(label="y", prediction="p", sensitive=["s0"])
    expected = evaluate_fairness(
        df.assign(
            y=(df["label"] == "approved").astype(int), p=(df["pred"] == "approved").astype(int)
        ),
        numeric,
    )
    assert evaluate_fairness(df, config).features == expected.features


def test_minus_one_one_labels_with_an_explicit_positive_label_equal_fairlearn():
    # Fairlearn takes any two-valued labels with pos_label; so does the panel.
    df = make_data(8, 2000, [3])
    signed = df.assign(
        label=np.where(df["label"] == 1, 1, -1), pred=np.where(df["pred"] == 1, 1, -1)
    )
    config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"], positive_label=1)
    plain_config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"])
    assert (
        evaluate_fairness(signed, config).features == evaluate_fairness(df, plain_config).features
    )
    frame = MetricFrame(
        metrics={"tpr": partial(recall_score, pos_label=1, zero_division=np.nan)},
        y_true=signed["label"],
        y_pred=signed["pred"],
        sensitive_features=signed["s0"],
    )
    result = evaluate_fairness(signed, config).feature("s0")
    for group in result.groups:
        assert math.isclose(group.tpr, frame.by_group["tpr"][group.group], abs_tol=1e-9)


def test_two_classes_without_the_positive_label_say_how_to_fix_it():
    df = make_data(8, 200, [2]).assign(label=lambda d: np.where(d["label"] == 1, 2, -1))
    with pytest.raises(InvalidInput, match="positive_label .*--positive-label"):
        evaluate_fairness(df, FairnessConfig(label="label", prediction="pred", sensitive=["s0"]))


def test_sample_weights_equal_fairlearn_metricframe_with_sample_params():
    df = make_data(21, 3000, [3])
    df["w"] = np.random.default_rng(21).uniform(0.1, 5.0, len(df))
    config = FairnessConfig(
        label="label", prediction="pred", sensitive=["s0"], min_group_size=10, weight="w"
    )
    result = evaluate_fairness(df, config).feature("s0")
    weights = {"sample_weight": df["w"]}
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                 "fpr": false_positive_rate, "count": count},
        y_true=df["label"],
        y_pred=df["pred"],
        sensitive_features=df["s0"],
        sample_params={"selection_rate": weights, "tpr": weights, "fpr": weights},
    )  # fmt: skip
    for group in result.groups:
        expected = frame.by_group.loc[group.group]
        assert math.isclose(group.selection_rate, expected["selection_rate"], abs_tol=1e-9)
        assert math.isclose(group.tpr, expected["tpr"], abs_tol=1e-9)
        assert math.isclose(group.fpr, expected["fpr"], abs_tol=1e-9)
        assert group.count == expected["count"]  # rows, not summed weights
    assert math.isclose(
        result.demographic_parity_difference,
        demographic_parity_difference(
            df["label"], df["pred"], sensitive_features=df["s0"], sample_weight=df["w"]
        ),
        abs_tol=1e-9,
    )
    unweighted = evaluate_fairness(df, replace(config, weight=None)).feature("s0")
    assert unweighted.demographic_parity_difference != result.demographic_parity_difference


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_a_bad_weight_is_refused(bad: float):
    df = make_data(22, 200, [2]).assign(w=1.0)
    df.loc[5, "w"] = bad
    config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"], weight="w")
    with pytest.raises(InvalidInput, match="Weight column 'w'"):
        evaluate_fairness(df, config)


def test_control_features_equal_fairlearn_and_the_worst_level_is_checked():
    df = make_data(23, 4000, [2])
    df["region"] = np.random.default_rng(23).choice(["north", "south", "east"], len(df))
    config = FairnessConfig(
        label="label",
        prediction="pred",
        sensitive=["s0"],
        min_group_size=1,
        control="region",
        max_disparity={"demographic_parity_difference": 0.01, "demographic_parity_ratio": 0.5},
    )
    report = evaluate_fairness(df, config)
    result = report.feature("s0")
    for fairlearn_metric, ours in (
        (selection_rate, "demographic_parity_difference"),
        (true_positive_rate, "equal_opportunity_difference"),
    ):
        frame = MetricFrame(
            metrics=fairlearn_metric,
            y_true=df["label"],
            y_pred=df["pred"],
            sensitive_features=df["s0"],
            control_features=df["region"],
        )
        expected = frame.difference(method="between_groups")
        for level, value in expected.items():
            assert math.isclose(result.by_control[level][ours], value, abs_tol=1e-9)
        assert math.isclose(result.disparity(ours), expected.max(), abs_tol=1e-9)
    ratios = MetricFrame(
        metrics=selection_rate,
        y_true=df["label"],
        y_pred=df["pred"],
        sensitive_features=df["s0"],
        control_features=df["region"],
    ).ratio(method="between_groups")
    assert math.isclose(result.demographic_parity_ratio, ratios.min(), abs_tol=1e-9)
    assert [c.value for c in result.checks] == [
        result.demographic_parity_difference,
        result.demographic_parity_ratio,
    ]
    assert any("within each level of region" in note for note in report.notes)
    again = FairnessReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.feature("s0").by_control == result.by_control


# --- undefined rates ------------------------------------------------------------------------


def no_positive_group_data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 300
    group = np.repeat(["A", "B", "C"], n)
    label = rng.integers(0, 2, 3 * n)
    label[group == "C"] = 0
    pred = rng.integers(0, 2, 3 * n)
    return pd.DataFrame({"group": group, "label": label, "pred": pred})


def test_tpr_without_positive_labels_is_undefined_not_zero():
    df = no_positive_group_data()
    config = FairnessConfig(label="label", prediction="pred", sensitive=["group"])
    report = assert_matches_fairlearn(df, config)
    result = report.feature("group")
    c = next(g for g in result.groups if g.group == "C")
    assert math.isnan(c.tpr)
    assert not math.isnan(c.fpr)
    groups_json = report.to_dict()["features"]["group"]["groups"]
    assert next(g for g in groups_json if g["group"] == "C")["tpr"] is None
    assert any("TPR is undefined for C" in note for note in report.notes)

    # Fairlearn counts C's TPR as 0, so its gap is at least the largest defined TPR.
    fairlearn_gap = equal_opportunity_difference(
        df["label"], df["pred"], sensitive_features=df["group"]
    )
    tprs = [g.tpr for g in result.groups if g.group != "C"]
    assert fairlearn_gap == pytest.approx(max(tprs), abs=TOL)
    assert result.equal_opportunity_difference == pytest.approx(max(tprs) - min(tprs), abs=TOL)
    ab = df[df["group"] != "C"]
    assert result.equal_opportunity_difference == pytest.approx(
        equal_opportunity_difference(ab["label"], ab["pred"], sensitive_features=ab["group"]),
        abs=TOL,
    )


def test_precision_without_predicted_positives_is_undefined():
    df = no_positive_group_data()
    df.loc[df["group"] == "B", "pred"] = 0
    report = assert_matches_fairlearn(
        df, FairnessConfig(label="label", prediction="pred", sensitive=["group"])
    )
    b = next(g for g in report.feature("group").groups if g.group == "B")
    assert math.isnan(b.precision)
    assert b.selection_rate == 0.0


def test_undefined_disparity_leaves_its_check_unevaluated():
    df = no_positive_group_data()
    df["label"] = 0
    config = FairnessConfig(
        label="label",
        prediction="pred",
        sensitive=["group"],
        max_disparity={"equal_opportunity_difference": 0.1, "demographic_parity_difference": 0.5},
    )
    report = evaluate_fairness(df, config)
    result = report.feature("group")
    assert math.isnan(result.equal_opportunity_difference)
    assert [c.passed for c in result.checks] == [None, True]
    assert result.passed is True
    assert any("equal_opportunity_difference is undefined" in note for note in report.notes)


# --- groups ---------------------------------------------------------------------------------


def test_missing_sensitive_values_are_their_own_group():
    df = make_data(8, 1200, [3])
    df.loc[df.index % 7 == 0, "s0"] = None
    df.loc[df.index % 11 == 0, "s0"] = np.nan
    config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"])
    report = assert_matches_fairlearn(df, config)
    groups = {g.group: g.count for g in report.feature("s0").groups}
    assert groups[MISSING_GROUP] == int(df["s0"].isna().sum())
    assert sum(groups.values()) == len(df)


def test_missing_label_clashing_with_a_value_is_refused():
    df = pd.DataFrame({"y": [0, 1, 1], "p": [0, 1, 0], "g": ["a", MISSING_GROUP, None]})
    with pytest.raises(InvalidInput, match="'g'"):
        evaluate_fairness(df, FairnessConfig(label="y", prediction="p", sensitive=["g"]))


def test_a_single_group_defines_no_disparity_and_the_check_is_not_evaluated():
    # Fairlearn reports 0.0 here, which a maximum threshold would pass: a departure on purpose.
    df = make_data(9, 500, [1])
    report = evaluate_fairness(
        df,
        FairnessConfig(
            label="label",
            prediction="pred",
            sensitive=["s0"],
            max_disparity={"demographic_parity_difference": 0.05},
        ),
    )
    result = report.feature("s0")
    assert all(math.isnan(result.disparity(m)) for m in DISPARITY_METRICS)
    assert result.checks[0].passed is None and result.passed is None
    assert any("only one group is compared" in note for note in report.notes)
    assert "fewer than two compared groups" in result.undefined_reason(
        "demographic_parity_difference"
    )


def test_a_rate_defined_for_one_group_only_leaves_its_disparity_undefined_naming_the_others():
    df = pd.DataFrame(
        {
            "g": ["a"] * 50 + ["b"] * 50,
            "y": [1, 0] * 25 + [0] * 50,
            "p": [1, 0] * 25 + [1, 0] * 25,
        }
    )
    config = FairnessConfig(
        label="y",
        prediction="p",
        sensitive=["g"],
        max_disparity={"equal_opportunity_difference": 0.1},
    )
    result = evaluate_fairness(df, config).feature("g")
    assert math.isnan(result.equal_opportunity_difference)
    assert result.checks[0].passed is None
    reason = result.undefined_reason("equal_opportunity_difference")
    assert "fewer than two compared groups have a TPR" in reason
    assert "b had no positive labels" in reason
    assert result.demographic_parity_difference == 0.0  # both groups predict half positive


def test_all_predictions_equal_is_not_an_error():
    df = make_data(10, 1000, [3])
    df["pred"] = 0
    config = FairnessConfig(label="label", prediction="pred", sensitive=["s0"], min_group_size=10)
    report = assert_matches_fairlearn(df, config)
    result = report.feature("s0")
    assert result.demographic_parity_difference == 0.0
    assert math.isnan(result.demographic_parity_ratio)  # 0 / 0, as in Fairlearn
    assert any("predictions are negative" in note for note in report.notes)


def test_all_groups_insufficient_gives_no_verdict():
    df = make_data(12, 120, [3])
    config = FairnessConfig(
        label="label",
        prediction="pred",
        sensitive=["s0"],
        min_group_size=500,
        max_disparity={"demographic_parity_difference": 0.1},
    )
    report = evaluate_fairness(df, config)
    result = report.feature("s0")
    assert result.passed is None
    assert report.passed is None
    assert all(g.insufficient_data for g in result.groups)
    assert all(math.isnan(result.disparity(m)) for m in DISPARITY_METRICS)
    assert any("no group has enough rows" in note for note in report.notes)


def test_intersection_is_named_and_skips_empty_combinations():
    df = pd.DataFrame(
        {
            "gender": ["F", "F", "M", "M"] * 30,
            "age_band": ["young", "old", "young", "young"] * 30,
            "y": [0, 1] * 60,
            "p": [1, 1, 0, 1] * 30,
        }
    )
    config = FairnessConfig(
        label="y", prediction="p", sensitive=["gender", "age_band"], min_group_size=1
    )
    report = assert_matches_fairlearn(df, config)
    names = [g.group for g in report.feature("gender&age_band").groups]
    assert names == ["F&old", "F&young", "M&young"]


def test_intersection_of_many_wide_features_is_renumbered():
    rng = np.random.default_rng(13)
    n = 400
    df = pd.DataFrame({f"c{i}": rng.integers(0, 40, n) for i in range(3)})
    df["y"] = rng.integers(0, 2, n)
    df["p"] = rng.integers(0, 2, n)
    config = FairnessConfig(
        label="y", prediction="p", sensitive=["c0", "c1", "c2"], min_group_size=1
    )
    result = evaluate_fairness(df, config).feature("c0&c1&c2")
    expected = df.groupby(["c0", "c1", "c2"]).size()
    assert [g.group for g in result.groups] == ["&".join(map(str, k)) for k in expected.index]
    assert [g.count for g in result.groups] == list(expected)


# --- thresholds -----------------------------------------------------------------------------


def two_group_data() -> pd.DataFrame:
    """A selects 60 of 100, B 40 of 100: DP difference 0.2, DP ratio 2/3."""
    return pd.DataFrame(
        {
            "g": ["A"] * 100 + ["B"] * 100,
            "y": ([1, 0] * 50) * 2,
            "p": [1] * 60 + [0] * 40 + [1] * 40 + [0] * 60,
        }
    )


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"demographic_parity_difference": 0.25}, True),
        ({"demographic_parity_difference": 0.2}, True),  # exactly at the limit passes
        ({"demographic_parity_difference": 0.1}, False),
        ({"demographic_parity_ratio": 0.6}, True),
        ({"demographic_parity_ratio": 0.8}, False),  # a ratio threshold is a minimum
        ({"demographic_parity_difference": 0.25, "demographic_parity_ratio": 0.8}, False),
        ({}, None),
    ],
)
def test_pass_fail_against_thresholds(limits, expected):
    config = FairnessConfig(label="y", prediction="p", sensitive=["g"], max_disparity=limits)
    report = evaluate_fairness(two_group_data(), config)
    result = report.feature("g")
    assert result.demographic_parity_difference == pytest.approx(0.2, abs=TOL)
    assert result.demographic_parity_ratio == pytest.approx(2 / 3, abs=TOL)
    assert result.passed is expected
    assert report.passed is expected
    assert [c.metric for c in result.checks] == list(limits)


def test_one_failing_feature_fails_the_report():
    df = two_group_data()
    df["h"] = "same"
    config = FairnessConfig(
        label="y",
        prediction="p",
        sensitive=["g", "h"],
        max_disparity={"demographic_parity_difference": 0.1},
    )
    report = evaluate_fairness(df, config)
    # "h" has one group: no disparity, no verdict; a failing feature still fails the report.
    assert [f.passed for f in report.features] == [False, None, False]
    assert report.passed is False


# --- JSON -----------------------------------------------------------------------------------


def test_json_round_trip():
    df = no_positive_group_data()
    df["h"] = np.where(np.arange(len(df)) % 4 == 0, "x", "y")
    config = FairnessConfig(
        label="label",
        prediction="pred",
        sensitive=["group", "h"],
        min_group_size=100,
        max_disparity={"equalized_odds_difference": 0.2, "demographic_parity_ratio": 0.8},
    )
    report = evaluate_fairness(df, config)
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert set(data["features"]) == {"group", "h", "group&h"}
    feature = data["features"]["group"]
    assert set(feature) >= {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "passed",
        "checks",
        "insufficient_groups",
        "groups",
    }
    assert set(feature["groups"][0]) == {
        "group",
        "count",
        "selection_rate",
        "tpr",
        "fpr",
        "precision",
        "accuracy",
        "insufficient_data",
    }
    assert data["features"]["group&h"]["insufficient_groups"]
    restored = FairnessReport.from_dict(data)
    assert restored.to_dict() == data
    assert restored.config == config
    assert math.isnan(next(g for g in restored.feature("group").groups if g.group == "C").tpr)


def test_from_dict_rejects_other_json():
    with pytest.raises(InvalidInput, match="Not a fairness report"):
        FairnessReport.from_dict({"features": {}})


# --- bad input ------------------------------------------------------------------------------


def valid_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"y": [0, 1, 1, 0], "p": [0, 1, 0, 0], "s": [0.1, 0.9, 0.4, 0.2], "g": list("abab")}
    )


@pytest.mark.parametrize(
    ("change", "config", "message"),
    [
        (None, dict(label="target", prediction="p", sensitive=["g"]), "Label column 'target'"),
        (None, dict(label="y", prediction="p", sensitive=["race"]), "Sensitive column 'race'"),
        (None, dict(label="y", prediction="pp", sensitive=["g"]), "Prediction column 'pp'"),
        (None, dict(label="y", score="ss", sensitive=["g"]), "Score column 'ss'"),
        (None, dict(label="y", prediction="p", score="s", sensitive=["g"]), "exactly one"),
        (None, dict(label="y", sensitive=["g"]), "exactly one"),
        (None, dict(label="y", prediction="p", sensitive=[]), "at least one sensitive"),
        (None, dict(label="y", prediction="p", sensitive=["g", "g"]), "more than once"),
        (("y", [0, 1, 2, 1]), dict(label="y", prediction="p", sensitive=["g"]), "'y'.*2"),
        (("y", [0.0, 1.0, 0.5, 1.0]), dict(label="y", prediction="p", sensitive=["g"]), "'y'"),
        (
            ("y", ["no", "yes", "yes", "no"]),
            dict(label="y", prediction="p", sensitive=["g"]),
            "'y'",
        ),
        (("y", [0, 1, None, 0]), dict(label="y", prediction="p", sensitive=["g"]), "'y'.*missing"),
        (
            ("p", [0, 1, 3, 0]),
            dict(label="y", prediction="p", sensitive=["g"]),
            "Prediction column 'p'",
        ),
        (
            ("s", ["a", "b", "c", "d"]),
            dict(label="y", score="s", sensitive=["g"]),
            "Score column 's'.*numeric",
        ),
        (
            ("s", [True, False, True, True]),
            dict(label="y", score="s", sensitive=["g"]),
            "Score column 's'",
        ),
        (
            ("s", [0.1, None, 0.3, 0.3]),
            dict(label="y", score="s", sensitive=["g"]),
            "Score column 's'.*missing",
        ),
        (None, dict(label="y", score="s", threshold=math.nan, sensitive=["g"]), "threshold"),
        (
            None,
            dict(label="y", prediction="p", sensitive=["g"], min_group_size=0),
            "min_group_size",
        ),
        (
            None,
            dict(label="y", prediction="p", sensitive=["g"], max_disparity={"dp": 0.1}),
            "Unknown disparity metric 'dp'",
        ),
        (
            None,
            dict(
                label="y",
                prediction="p",
                sensitive=["g"],
                max_disparity={"demographic_parity_difference": -1},
            ),
            "demographic_parity_difference",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(change, config, message):
    df = valid_frame()
    if change is not None:
        df[change[0]] = change[1]
    with pytest.raises(InvalidInput, match=message):
        evaluate_fairness(df, FairnessConfig(**config))


def test_empty_data_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        evaluate_fairness(
            valid_frame().iloc[:0], FairnessConfig(label="y", prediction="p", sensitive=["g"])
        )


def test_named_classes_must_match_between_label_and_prediction():
    df = valid_frame()
    df["y"] = ["no", "yes", "yes", "no"]
    df["p"] = ["N", "yes", "N", "N"]
    config = FairnessConfig(label="y", prediction="p", sensitive=["g"], positive_label="yes")
    with pytest.raises(InvalidInput, match="'y' and prediction column 'p'"):
        evaluate_fairness(df, config)


def test_mlops_core_does_not_import_streamlit():
    code = "import sys, mlops_core.evidence.fairness; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

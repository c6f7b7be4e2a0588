"""Profiles, the Evidently summary, schema checks against a real logged signature, freshness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlops_core.demo.scenario import fluent_tracking
from mlops_core.errors import InvalidInput, NotFound
from mlops_core.evidence.profiling import (
    column_distribution_figure,
    compare_profiles,
    evidently_summary,
    freshness,
    profile_frame,
)
from mlops_core.evidence.schema_check import check_schema, signature_inputs_for_version
from mlops_core.policy import parse_policy
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import as_loaded

NOW = datetime(2026, 10, 12, 9, 0)


def traffic(n: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """Scored customers as an inference log holds them, with a few gaps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "timestamp": pd.Timestamp(NOW) - pd.to_timedelta(rng.integers(0, 7 * 86400, n), "s"),
            "tenure_months": rng.integers(1, 72, n),
            "monthly_charges": rng.normal(70 + 20 * drift, 20, n).round(2),
            "usage_gb": rng.lognormal(3, 0.5, n).round(2),
            "contract_type": rng.choice(["month-to-month", "one-year", "two-year"], n),
            "paperless": rng.random(n) < 0.6,
        }
    )
    frame.loc[rng.random(n) < 0.05, "usage_gb"] = np.nan
    frame.loc[rng.random(n) < 0.03, "contract_type"] = None
    return frame


# Profiles


def test_profile_numbers_on_a_known_frame() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.0, 2.0, 3.0, 4.0, None],
            "plan": ["basic", "basic", "pro", None, "basic"],
            "active": [True, False, True, True, False],
            "seen": pd.to_datetime(["2026-10-01", "2026-10-03", None, "2026-10-02", "2026-10-05"]),
        }
    )
    profile = profile_frame(frame).set_index("column")
    amount = profile.loc["amount"]
    assert (amount["type"], amount["count"], amount["missing_share"]) == ("numeric", 4, 0.2)
    assert (amount["min"], amount["max"], amount["mean"]) == (1.0, 4.0, 2.5)
    assert amount["std"] == pytest.approx(1.2909944)
    assert (amount["q25"], amount["q50"], amount["q75"]) == (1.75, 2.5, 3.25)
    plan = profile.loc["plan"]
    assert (plan["type"], plan["distinct_count"], plan["missing_share"]) == ("categorical", 2, 0.2)
    assert plan["top_categories"] == [("basic", 0.6), ("pro", 0.2)]
    active = profile.loc["active"]
    assert (active["type"], active["mean"]) == ("boolean", 0.6)
    assert active["top_categories"] == [(True, 0.6), (False, 0.4)]
    seen = profile.loc["seen"]
    assert (seen["type"], seen["min"], seen["max"]) == (
        "datetime",
        "2026-10-01T00:00:00",
        "2026-10-05T00:00:00",
    )


def test_compare_profiles_puts_both_sides_next_to_each_other() -> None:
    reference = traffic(300, seed=1)
    current = traffic(200, seed=2).drop(columns="paperless").assign(channel="web")
    compared = compare_profiles(reference, current).set_index("column")
    assert list(compared.columns[:4]) == ["type_ref", "type_cur", "count_ref", "count_cur"]
    assert compared.loc["tenure_months", "count_ref"] == 300
    assert compared.loc["tenure_months", "count_cur"] == 200
    assert pd.isna(compared.loc["paperless", "count_cur"])
    assert pd.isna(compared.loc["channel", "count_ref"])
    assert list(compared.index)[-1] == "channel"


def test_profile_agrees_with_evidently_data_summary() -> None:
    current = as_loaded(traffic(6000, seed=3, drift=1.0), "current", sample_size=2000).frame
    reference = traffic(1500, seed=4)
    summary = evidently_summary(current, reference=reference, sample_size=2000)
    assert summary["sample_rows"] == 2000
    assert summary["dataset"]["row_count"] == 2000
    assert "<html" in summary["html"].lower()
    for side, frame in (("columns", current), ("reference_columns", reference)):
        ours = profile_frame(frame).set_index("column")
        theirs = summary[side]
        assert set(theirs) == set(frame.columns) - {"timestamp"}
        for column, values in theirs.items():
            for stat in ("count", "missing_share", "min", "max", "mean", "std", "q25", "q50"):
                if stat in values:
                    assert ours.loc[column, stat] == pytest.approx(values[stat]), (column, stat)
            assert ours.loc[column, "q75"] == pytest.approx(values.get("q75", np.nan), nan_ok=True)
            if "top_categories" in values:
                mine = dict(ours.loc[column, "top_categories"])
                assert mine == pytest.approx(dict(values["top_categories"])), column
    assert "min" in summary["columns"]["monthly_charges"]
    assert "top_categories" in summary["columns"]["contract_type"]


# Schema checks against a real logged model


FEATURES = ["tenure_months", "monthly_charges", "usage_gb", "contract_type", "paperless"]


@pytest.fixture(scope="module")
def registered_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Model "m" version 1: an sklearn pipeline logged with its inferred signature."""
    folder: Path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    train = traffic(400, seed=5)
    X, y = train[FEATURES], (train["monthly_charges"] > 70).astype(int)
    model = make_pipeline(
        ColumnTransformer(
            [("plan", OneHotEncoder(handle_unknown="ignore"), ["contract_type"])],
            remainder="drop",
        ),
        LogisticRegression(),
    ).fit(X.fillna({"contract_type": "unknown"}), y)
    with fluent_tracking(uri):
        experiment = mlflow.create_experiment("profiling", artifact_location=str(folder / "art"))
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(X, y),
                registered_model_name="m",
                pip_requirements=["scikit-learn"],
            )
    yield Registry(uri)


def _clean(n: int = 200) -> pd.DataFrame:
    return traffic(n, seed=6)


def test_signature_of_a_registered_version(registered_model: Registry) -> None:
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    assert inputs == [
        ("tenure_months", "long", True),
        ("monthly_charges", "double", True),
        # The training data had gaps here, so MLflow logged the column as optional.
        ("usage_gb", "double", False),
        ("contract_type", "string", False),
        ("paperless", "boolean", True),
    ]
    with pytest.raises(NotFound, match="'m' has no version 7"):
        signature_inputs_for_version(registered_model, "m", 7)
    with pytest.raises(NotFound, match="'nope'"):
        signature_inputs_for_version(registered_model, "nope", 1)


def test_clean_log_fits_and_bookkeeping_columns_can_be_ignored(
    registered_model: Registry,
) -> None:
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    log = _clean().assign(model="m", model_version="1", score=0.4, prediction=0, label=None)
    report = check_schema(log, inputs)
    assert report.ok, report.problems
    assert report.checked_columns == FEATURES
    strict = check_schema(log, inputs, ignore=())
    assert {p.column for p in strict.problems} == {
        "timestamp",
        "model",
        "model_version",
        "score",
        "prediction",
        "label",
    }
    assert {p.kind for p in strict.problems} == {"unexpected_column"}
    assert check_schema(log.assign(extra=1), inputs, allow_extra=True).ok


def test_the_policys_own_columns_are_ignored_under_any_name(
    registered_model: Registry,
) -> None:
    """A team's log names its bookkeeping columns its own way; the policy says which."""
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    data = parse_policy(
        """
[defaults.data]
timestamp_column = "scored_at"
label_column = "churned"
score_column = "churn_probability"
prediction_column = "will_churn"
id_column = "request_id"
ignore_columns = []
""",
        "test",
    ).defaults.data
    log = _clean().rename(columns={"timestamp": "scored_at"})
    log = log.assign(churned=1, churn_probability=0.7, will_churn=1, request_id="r-1")
    assert check_schema(log, inputs, ignore=data.bookkeeping_columns).ok
    # Anything else is still reported.
    report = check_schema(log.assign(score=0.1), inputs, ignore=data.bookkeeping_columns)
    assert [(p.kind, p.column) for p in report.problems] == [("unexpected_column", "score")]


def test_missing_and_unexpected_columns_are_named(registered_model: Registry) -> None:
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    frame = _clean().drop(columns=["monthly_charges", "usage_gb"]).assign(churned=0)
    report = check_schema(frame, inputs)
    assert [(p.kind, p.column) for p in report.problems] == [
        ("missing_column", "monthly_charges"),
        ("unexpected_column", "churned"),
    ]
    missing = report.problems[0]
    assert (missing.expected, missing.observed) == ("double", None)
    assert "monthly_charges" in missing.detail
    assert (
        check_schema(frame, inputs, ignore=["churned", "timestamp"]).of_kind("unexpected_column")
        == []
    )
    as_dict = report.to_dict()
    assert as_dict["ok"] is False
    assert as_dict["problems"][0]["column"] == "monthly_charges"


def test_wrong_types_are_reported_with_an_example(registered_model: Registry) -> None:
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    frame = _clean().assign(
        tenure_months=lambda f: f["tenure_months"].astype(str) + " months",
        contract_type=3,
        monthly_charges=lambda f: f["monthly_charges"].astype(int),
    )
    report = check_schema(frame, inputs)
    wrong = {p.column: p for p in report.of_kind("wrong_type")}
    assert set(wrong) == {"tenure_months", "contract_type"}
    assert (wrong["tenure_months"].expected, wrong["tenure_months"].observed) == ("long", "object")
    assert "whole numbers" in wrong["tenure_months"].detail
    assert "months'" in wrong["tenure_months"].detail
    assert "text" in wrong["contract_type"].detail
    fractional = check_schema(_clean().assign(tenure_months=2.5), inputs)
    assert [p.kind for p in fractional.problems] == ["wrong_type"]


def test_nulls_in_required_columns_are_counted(registered_model: Registry) -> None:
    inputs = signature_inputs_for_version(registered_model, "m", 1)
    frame = _clean(200)
    frame.loc[:9, "tenure_months"] = np.nan
    frame.loc[:19, "usage_gb"] = np.nan
    assert frame["tenure_months"].dtype == "float64"
    report = check_schema(frame, inputs)
    # An integer column read as float64 because of its gaps is a null problem, not a type one.
    assert [(p.kind, p.column) for p in report.problems] == [("unexpected_nulls", "tenure_months")]
    assert "10 of 200 values (5.0%)" in report.problems[0].detail


def test_plain_name_type_pairs_work_too() -> None:
    frame = pd.DataFrame({"x": [1.5, None], "when": pd.to_datetime(["2026-10-01", "2026-10-02"])})
    report = check_schema(frame, [("x", "double"), ("when", "datetime"), ("flag", "boolean")])
    assert [(p.kind, p.column) for p in report.problems] == [
        ("unexpected_nulls", "x"),
        ("missing_column", "flag"),
    ]


# Freshness


def test_freshness_of_frames_and_timestamps() -> None:
    frame = traffic(100, seed=7)
    newest = frame["timestamp"].max().to_pydatetime()
    fresh = freshness(frame, timedelta(days=1), now=newest + timedelta(hours=5))
    assert (fresh.fresh, fresh.newest, fresh.age) == (True, newest, timedelta(hours=5))
    assert fresh.message == "Fresh: newest row is 5 h old (allowed age 1 d)."
    stale = freshness(newest, timedelta(days=1), now=newest + timedelta(days=3, minutes=30))
    assert not stale.fresh
    assert stale.message == "Stale: newest row is 3 d old (allowed age 1 d)."
    aware = freshness(datetime(2026, 10, 12, 11, 0, tzinfo=UTC), timedelta(hours=1), now=NOW)
    assert aware.newest == datetime(2026, 10, 12, 11, 0) and "future" in aware.message
    empty = freshness(frame.iloc[:0], timedelta(days=1), now=NOW)
    assert (empty.fresh, empty.newest, empty.age) == (False, None, None)
    assert "No data" in empty.message
    with pytest.raises(InvalidInput, match="'event_time'"):
        freshness(frame, timedelta(days=1), timestamp_column="event_time")


# Figures


def test_numeric_distribution_uses_shared_bins() -> None:
    reference, current = traffic(500, seed=8), traffic(300, seed=9, drift=1.0)
    figure = column_distribution_figure(reference, current, "monthly_charges")
    ref_bars, cur_bars = figure.data
    assert (ref_bars.name, cur_bars.name) == ("reference", "current")
    assert list(ref_bars.x) == list(cur_bars.x)
    assert sum(ref_bars.y) == pytest.approx(1.0) and sum(cur_bars.y) == pytest.approx(1.0)
    assert figure.layout.title.text == "monthly_charges: reference vs current"
    assert figure.layout.xaxis.title.text == "monthly_charges"
    assert figure.layout.yaxis.title.text == "share of rows"


def test_categorical_distribution_shows_shares_and_missing() -> None:
    reference, current = traffic(500, seed=8), traffic(300, seed=9)
    figure = column_distribution_figure(reference, current, "contract_type")
    assert set(figure.data[0].x) == {"month-to-month", "one-year", "two-year", "(missing)"}
    assert sum(figure.data[1].y) == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="current data has no column 'region'"):
        column_distribution_figure(reference.assign(region="n"), current, "region")

"""A team's regressor and classifier, as stock MLflow logs them, through fairness evidence,
gates, the fairness CLI and page: regression metrics, groups of any dtype."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.evidence.fairness_evidence import (
    fairness_for_version,
    metric_key,
    record_fairness_evidence,
)
from mlops_core.governance.gates import FAILED, PASSED, evaluate_gates
from mlops_core.policy import REGRESSION_FAIRNESS_METRICS
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, VIEWER, assert_no_exception, shown
from tests.team_store import TeamStore

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "fairness.py")
HOUSE = "team-house-price"
CHURN = "team-churn"


def evaluation_files(team_store: TeamStore, folder: Path) -> dict[str, Path]:
    """The team's evaluation sets with the columns a policy names: a predicted price that
    overestimates owner-occupied homes, and a churn score."""
    datasets = team_store.folder / "datasets"
    house = pd.read_parquet(datasets / "house-forest.parquet")
    rng = np.random.default_rng(0)
    house["predicted"] = house["price"] + rng.normal(0, 10_000, len(house))
    house.loc[house["owner_occupied"], "predicted"] += 25_000
    churn = pd.read_parquet(datasets / "churn-gbm-eval.parquet")
    churn["score"] = rng.random(len(churn))
    paths = {HOUSE: folder / "house-eval.parquet", CHURN: folder / "churn-eval.parquet"}
    house.to_parquet(paths[HOUSE])
    churn.to_parquet(paths[CHURN])
    return paths


def team_policy(
    settings: Settings, folder: Path, files: dict[str, Path], extra: str = ""
) -> Settings:
    text = f"""
[models.{HOUSE}]
alias = "production"
key_metric = "rmse"
[models.{HOUSE}.data]
evaluation = "{files[HOUSE]}"
label_column = "price"
prediction_column = "predicted"
[models.{HOUSE}.fairness]
sensitive_features = ["owner_occupied", "neighborhood"]
min_group_size = 20
[models.{HOUSE}.fairness.thresholds]
mae_ratio = 0.8
mean_label_difference = 1e9

[models.{CHURN}]
alias = "production"
[models.{CHURN}.data]
evaluation = "{files[CHURN]}"
label_column = "churned"
[models.{CHURN}.fairness]
sensitive_features = ["senior"]
min_group_size = 20
{extra}
"""
    path = folder / f"policy-{len(list(folder.glob('policy-*.toml')))}.toml"
    path.write_text(text)
    return dataclasses.replace(settings, policy_file=path)


@pytest.fixture
def settings(team_settings: Settings, team_store: TeamStore, tmp_path: Path) -> Settings:
    migrate(team_settings)  # the panel's audit log records the evidence it stores
    return team_policy(team_settings, tmp_path, evaluation_files(team_store, tmp_path))


def test_a_regressors_fairness_uses_its_errors_and_is_stored_under_the_same_names(
    settings: Settings,
) -> None:
    registry = Registry(settings.tracking_uri)
    evidence = fairness_for_version(settings, registry, HOUSE, "2")
    report = evidence.report
    assert report.task == "regression" and "metrics" in evidence.task_reason
    owner = report.feature("owner_occupied")
    assert [g.group for g in owner.groups] == ["False", "True"]
    # Owner-occupied homes are overestimated by 25,000: a larger error for that group.
    by_group = {g.group: g for g in owner.groups}
    assert by_group["True"].mae > by_group["False"].mae + 15_000
    assert [(c.metric, c.passed) for c in owner.checks] == [
        ("mae_ratio", False),
        ("mean_label_difference", True),
    ]
    assert report.feature("neighborhood").passed is True
    assert report.passed is False

    record_fairness_evidence(settings, registry, HOUSE, "2", APPROVER)
    run = registry.get_run(registry.get_version(HOUSE, "2").run_id)
    for metric in REGRESSION_FAIRNESS_METRICS:
        assert run.metrics[metric_key("owner_occupied", metric)] == pytest.approx(
            owner.disparity(metric)
        )
    stored = fairness_for_version(settings, registry, HOUSE, "2")
    assert stored.source.startswith("stored evidence")
    assert stored.report.to_dict() == report.to_dict()


def test_gates_read_rmse_as_a_ceiling_and_check_regression_fairness(
    settings: Settings, tmp_path: Path, team_store: TeamStore
) -> None:
    registry = Registry(settings.tracking_uri)
    rmse = registry.get_run(registry.get_version(HOUSE, "2").run_id).metrics["rmse"]
    champion_rmse = registry.get_run(registry.get_version(HOUSE, "1").run_id).metrics["rmse"]
    limits = f"""
[models.{HOUSE}.min_metrics]
rmse = {rmse - 1.0}
r2 = 0.1
[models.{HOUSE}.max_regression]
rmse = 0.0
"""
    strict = team_policy(settings, tmp_path, evaluation_files(team_store, tmp_path), limits)
    gates = {r.name: r for r in evaluate_gates(strict, registry, HOUSE, "2").results}
    # min_metrics of a lower-is-better metric is a maximum: v2's rmse is 1.0 above it.
    assert gates["min rmse"].status == FAILED and "at most" in gates["min rmse"].reason
    assert gates["min r2"].status == PASSED and "at least 0.1" in gates["min r2"].reason
    worse = rmse > champion_rmse
    assert gates["regression rmse"].status == (FAILED if worse else PASSED)
    assert gates["fairness owner_occupied mae_ratio"].status == FAILED
    assert gates["fairness owner_occupied mae_ratio"].reason.endswith("must be at least 0.8.")
    assert gates["fairness neighborhood mae_ratio"].status == PASSED


def test_the_cli_prints_the_same_metric_names_for_a_regressor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("MLOPS_POLICY_FILE", str(settings.policy_file))
    code = main(["fairness", "--model", HOUSE, "--version", "2", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["task"] == "regression"
    owner = data["features"]["owner_occupied"]
    assert set(REGRESSION_FAIRNESS_METRICS) <= set(owner)
    assert [c["metric"] for c in owner["checks"]] == ["mae_ratio", "mean_label_difference"]
    assert {g["group"] for g in owner["groups"]} == {"False", "True"}

    # A 0/1 integer column and a categorical one work as sensitive features on the CLI.
    code = main(["fairness", "--model", CHURN, "--version", "1", "--sensitive", "senior,contract"])
    out = capsys.readouterr().out
    assert code == 0 and "Fairness of team-churn v1 (classification)" in out
    assert "senior&contract" in out and "1&two-year" in out


def open_page(monkeypatch: pytest.MonkeyPatch, settings: Settings, **query: str) -> AppTest:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("MLOPS_POLICY_FILE", str(settings.policy_file))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["actor"] = VIEWER
    at.query_params.update(query)
    at.run()
    assert_no_exception(at)
    return at


def test_the_page_shows_a_regressors_groups_and_offers_columns_of_any_dtype(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(monkeypatch, settings, model=HOUSE, version="2")
    assert shown(at.error[0]) == f"{HOUSE} v2: fairness fails the policy's thresholds."
    assert "Task: regression (metrics" in "\n".join(shown(c) for c in at.caption)
    assert [t.label for t in at.tabs] == [
        "owner_occupied",
        "neighborhood",
        "owner_occupied&neighborhood",
    ]
    checks = at.dataframe[1].value.set_index("disparity")
    assert list(checks.index) == list(REGRESSION_FAIRNESS_METRICS)
    assert (checks.loc["mae_ratio", "threshold"], checks.loc["mae_ratio", "result"]) == (
        "min 0.8",
        "FAIL",
    )
    groups = at.dataframe[2].value
    assert {"mean_prediction", "mean_label", "mae", "rmse"} <= set(groups.columns)

    at.radio(key="fairness_mode").set_value("Recompute from the evaluation set").run()
    assert_no_exception(at)
    options = at.multiselect(key="fairness_sensitive").options
    assert {"owner_occupied", "neighborhood"} <= set(options)
    assert "price" not in options and "predicted" not in options

    churn = open_page(monkeypatch, settings, model=CHURN, version="1")
    churn.radio(key="fairness_mode").set_value("Recompute from the evaluation set").run()
    options = churn.multiselect(key="fairness_sensitive").options
    assert {"senior", "is_female", "contract"} <= set(options)
    churn.multiselect(key="fairness_sensitive").set_value(["is_female", "contract"]).run()
    assert_no_exception(churn)
    assert [t.label for t in churn.tabs] == ["is_female", "contract", "is_female&contract"]

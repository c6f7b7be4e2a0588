"""Classifier or regressor: the policy's word, else what the registry shows."""

from __future__ import annotations

import pytest

from mlops_core.config import Settings
from mlops_core.evidence.task import decide_task, detect_task, estimator_task, metrics_task
from mlops_core.policy import ModelPolicy, load_policy, parse_policy
from mlops_core.stores.registry import Registry
from tests.team_store import TeamStore


@pytest.fixture(scope="module")
def team_registry(team_store: TeamStore) -> Registry:
    return Registry(team_store.tracking_uri)


@pytest.mark.parametrize(
    ("model", "task", "reason"),
    [
        # predict() returns the churned class: an integer output.
        ("team-churn", "classification", "signature"),
        # A float output alone could be a score; rmse, mae and r2 settle it.
        ("team-house-price", "regression", "metrics"),
        ("team-legacy-fraud", "classification", "metrics"),
        ("team-nosig", "classification", "default"),
    ],
)
def test_the_task_of_a_teams_models(
    team_registry: Registry, model: str, task: str, reason: str
) -> None:
    detected = detect_task(team_registry, ModelPolicy(), model, "1")
    assert (detected.task, detected.reason) == (task, reason)
    if reason == "default":
        assert 'task = "regression"' in detected.detail


def test_the_policy_decides_before_anything_in_the_registry(team_registry: Registry) -> None:
    policy = parse_policy('[models.team-nosig]\ntask = "regression"\n', "test")
    detected = detect_task(team_registry, policy.for_model("team-nosig"), "team-nosig", "1")
    assert (detected.task, detected.reason) == ("regression", "policy")
    with pytest.raises(Exception, match="task"):
        parse_policy('[defaults]\ntask = "ranking"\n', "test")


def test_the_demo_classifiers_log_scores_but_are_classifiers(demo_settings: Settings) -> None:
    registry = Registry(demo_settings.tracking_uri)
    policy = load_policy(demo_settings.policy_file)
    for summary in registry.list_models():
        detected = detect_task(registry, policy.for_model(summary.name), summary.name, "1")
        assert detected.task == "classification", (summary.name, detected)


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("sklearn.ensemble._forest.RandomForestRegressor", "regression"),
        ("sklearn.linear_model._base.LinearRegression", "regression"),
        ("RidgeCV", "regression"),
        ("xgboost.sklearn.XGBRegressor", "regression"),
        ("LogisticRegressionCV", "classification"),
        ("sklearn.ensemble.GradientBoostingClassifier", "classification"),
        ("SVC", "classification"),
        ("sklearn.pipeline.Pipeline", None),
    ],
)
def test_estimator_class_names(name: str, task: str | None) -> None:
    assert estimator_task(name) == task


def test_metric_names_vote_and_a_tie_says_nothing() -> None:
    assert metrics_task(["val_rmse", "training_r2_score", "accuracy"])[0] == "regression"
    assert metrics_task(["roc_auc", "train_loss"]) == ("classification", ["roc_auc"])
    assert metrics_task(["rmse", "accuracy"]) == (None, [])
    assert metrics_task(["rows_read"]) == (None, [])


def test_an_estimator_tag_decides_before_metrics() -> None:
    detected = decide_task(
        policy_task=None,
        model_file=None,
        estimator_classes=["sklearn.linear_model._ridge.Ridge"],
        metric_names=["accuracy"],
    )
    assert (detected.task, detected.reason) == ("regression", "estimator")

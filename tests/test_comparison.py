"""Comparing runs and versions on a real MLflow store seeded with the demo scenario."""

import argparse
import io

import pandas as pd
import pytest

from mlops_core.commands import compare as compare_command
from mlops_core.config import Settings
from mlops_core.demo.scenario import training_experiment
from mlops_core.errors import InvalidInput, NotFound
from mlops_core.evidence.comparison import (
    ComparedItem,
    Comparison,
    candidate_vs_champion,
    compare_runs,
    compare_versions,
    key_metrics,
    merge_page_selection,
    metric_deltas,
    metric_histories,
    models_table,
    order_by_clause,
    parse_id_list,
    versions_table,
)
from mlops_core.evidence.lineage import version_lineage
from mlops_core.evidence.monitoring import browsing_order
from mlops_core.policy import ModelPolicy, Policy, load_policy, metric_direction
from mlops_core.stores.registry import Registry
from ui.charts.comparison import metric_history_figure, parallel_coordinates, scatter_figure

MODEL = "churn-predictor"


@pytest.fixture(scope="module")
def registry(demo_settings: Settings) -> Registry:
    return Registry(demo_settings.tracking_uri)


@pytest.fixture(scope="module")
def policy(demo_settings: Settings) -> Policy:
    return load_policy(demo_settings.policy_file)


@pytest.fixture(scope="module")
def experiment_id(registry: Registry) -> str:
    return registry.experiment_by_name(training_experiment(MODEL)).experiment_id


@pytest.fixture(scope="module")
def versions(registry: Registry) -> Comparison:
    return compare_versions(registry, MODEL, ["1", "2", "3"])


def test_filter_narrows_the_runs_and_a_malformed_one_says_why(
    registry: Registry, experiment_id: str
) -> None:
    forests = registry.search_runs([experiment_id], "params.model = 'random_forest'").runs
    assert len(forests) >= 2 and set(forests["params.model"]) == {"random_forest"}
    with pytest.raises(InvalidInput, match="Invalid comparator '>>'"):
        registry.search_runs([experiment_id], "metrics.roc_auc >> 0.8")


def test_server_sorted_pages_cover_every_run_once(registry: Registry, experiment_id: str) -> None:
    total = len(registry.search_runs([experiment_id], page_size=1000).runs)
    order = [order_by_clause("metrics.roc_auc", descending=True)]
    ids, values, token, pages = [], [], None, 0
    while True:
        page = registry.search_runs([experiment_id], "", order, page_size=4, page_token=token)
        ids += page.runs["run_id"].tolist()
        values += page.runs["metrics.roc_auc"].tolist()
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages == -(-total // 4) and len(ids) == len(set(ids)) == total
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    ("column", "descending", "clause"),
    [
        ("start_time", True, "attributes.start_time DESC"),
        ("run_name", False, "attributes.run_name ASC"),
        ("metrics.val_log_loss", False, "metrics.`val_log_loss` ASC"),
        ("params.model", True, "params.`model` DESC"),
        ("tags.team", True, "tags.`team` DESC"),
    ],
)
def test_sort_columns_become_mlflow_order_by(column: str, descending: bool, clause: str) -> None:
    assert order_by_clause(column, descending) == clause


def test_an_unknown_sort_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Cannot sort by"):
        order_by_clause("run_id; drop table runs", True)


def test_selection_survives_paging_and_stops_at_ten() -> None:
    assert parse_id_list(" a,b,,a , c") == ["a", "b", "c"]
    # "a" was chosen on another page; on this page "c" is unticked and "d" ticked.
    update = merge_page_selection(["c", "a"], ["c", "d", "e"], ["d"])
    assert update.selection == ["a", "d"] and update.dropped == []
    update = merge_page_selection(["c", "a"], ["c", "d"], ["d", "c"])
    assert update.selection == ["c", "a", "d"]
    full = [str(i) for i in range(10)]
    update = merge_page_selection(full, ["x", "y"], ["x", "y"])
    assert update.selection == full and update.dropped == ["x", "y"]


def test_best_value_follows_the_metric_direction_and_policy_overrides(
    registry: Registry, versions: Comparison
) -> None:
    table = versions.metrics_table().set_index("metric")
    values = table[versions.labels].astype(float)
    best = versions.best_labels()
    assert table.loc["log_loss", "better"] == "lower"
    assert best["log_loss"] == [values.loc["log_loss"].idxmin()]
    # The demo's v2 has the best ROC AUC.
    assert table.loc["roc_auc", "better"] == "higher" and best["roc_auc"] == ["v2"]
    flipped = compare_versions(registry, MODEL, ["1", "2", "3"], {"roc_auc": "lower"})
    assert flipped.best_labels()["roc_auc"] == [values.loc["roc_auc"].idxmin()]


def test_only_differences_keeps_what_differs_or_is_missing_somewhere() -> None:
    comparison = Comparison(
        (
            ComparedItem("a", "run-a", {"same": "1", "changed": "x", "only_a": "1"}, {"m": 0.5}),
            ComparedItem("b", "run-b", {"same": "1", "changed": "y"}, {"m": 0.5, "loss": 0.2}),
        ),
        {"m": "higher", "loss": "lower"},
    )
    assert comparison.params_table()["param"].tolist() == ["changed", "only_a", "same"]
    assert comparison.params_table(only_differences=True)["param"].tolist() == [
        "changed",
        "only_a",
    ]
    assert comparison.metrics_table(only_differences=True)["metric"].tolist() == ["loss"]
    # A tie is best for both; a metric one item lacks is best where it exists.
    assert comparison.best_labels() == {"loss": ["b"], "m": ["a", "b"]}


def test_csv_holds_run_ids_params_and_metrics(versions: Comparison) -> None:
    frame = pd.read_csv(io.StringIO(versions.to_csv(only_differences=True)))
    assert list(frame.columns) == ["kind", "name", "better", "v1", "v2", "v3"]
    assert frame.iloc[0]["name"] == "run_id"
    params = frame[frame.kind == "param"]["name"].tolist()
    assert "model" in params and "features" not in params  # every version has the same
    assert set(frame[frame.kind == "metric"]["name"]) >= {"roc_auc", "log_loss"}


def test_metric_deltas_apply_tolerance_minimum_and_direction() -> None:
    policy = ModelPolicy(
        min_metrics={"roc_auc": 0.7, "recall": 0.5},
        max_regression={"roc_auc": 0.01, "log_loss": 0.0, "precision": 0.0},
    )
    deltas = metric_deltas(
        {"roc_auc": 0.79, "log_loss": 0.31, "f1": 0.5, "precision": 0.9},
        {"roc_auc": 0.80, "log_loss": 0.30, "f1": 0.6},
        policy,
    )
    assert set(deltas["metric"][:4]) == {"roc_auc", "log_loss", "precision", "recall"}
    rows = deltas.set_index("metric")
    # Worse by exactly the tolerance passes, despite float rounding.
    assert rows.loc["roc_auc", "delta"] == pytest.approx(-0.01)
    assert rows.loc["roc_auc", "within_tolerance"] and rows.loc["roc_auc", "meets_minimum"]
    assert rows.loc["roc_auc", "passes"]
    # Lower is better for a loss: a higher loss is a regression.
    assert rows.loc["log_loss", "direction"] == "lower"
    assert rows.loc["log_loss", "regression"] == pytest.approx(0.01)
    assert not rows.loc["log_loss", "passes"]
    # No champion value: a regression cannot be judged; a gated metric missing fails.
    assert pd.isna(rows.loc["precision", "within_tolerance"])
    assert pd.isna(rows.loc["precision", "passes"])
    assert not rows.loc["recall", "meets_minimum"] and not rows.loc["recall", "passes"]
    assert pd.isna(rows.loc["f1", "passes"])
    lower_loss = metric_deltas({"loss": 0.4}, {}, ModelPolicy(min_metrics={"loss": 0.3}))
    assert not lower_loss.loc[0, "meets_minimum"]  # a ceiling for lower-is-better metrics


def test_candidate_against_the_champion_on_the_demo(registry: Registry, policy: Policy) -> None:
    result = candidate_vs_champion(registry, MODEL, "2", policy)
    assert result.champion is not None and result.champion.version == "1"
    roc_auc = result.deltas.set_index("metric").loc["roc_auc"]
    assert roc_auc["delta"] > 0 and roc_auc["passes"]
    assert result.passes is True
    params = result.params.set_index("param")
    assert params.loc["model"].tolist() == ["hist_gradient_boosting", "logistic_regression"]
    itself = candidate_vs_champion(registry, MODEL, "1", policy)
    assert (itself.deltas["delta"] == 0).all() and itself.params.empty


def test_histories_and_charts_of_compared_runs(registry: Registry, experiment_id: str) -> None:
    boosted = registry.search_runs([experiment_id], "params.model = 'gradient_boosting'").runs
    comparison = compare_runs(registry, boosted["run_id"].tolist())
    history = metric_histories(registry, comparison, "val_log_loss")
    assert set(history["label"]) == set(comparison.labels)
    assert history.groupby("label").size().min() > 1
    assert len(metric_history_figure(history, "val_log_loss").data) == len(comparison.labels)
    frame = comparison.frame()
    parallel = parallel_coordinates(
        frame, ["params.learning_rate", "params.uses_proxy", "metrics.roc_auc"], "metrics.f1"
    )
    dimensions = parallel.data[0].dimensions
    assert [d.label for d in dimensions] == ["learning_rate", "uses_proxy", "roc_auc"]
    assert list(dimensions[1].ticktext) == sorted(set(frame["params.uses_proxy"]))
    scatter = scatter_figure(frame, "params.learning_rate", "metrics.roc_auc")
    assert list(scatter.data[0].text) == comparison.labels
    with pytest.raises(InvalidInput, match="No compared run has"):
        scatter_figure(frame, "params.C", "metrics.roc_auc")


def test_comparing_needs_two_to_ten_existing_runs(registry: Registry, experiment_id: str) -> None:
    run_id = registry.search_runs([experiment_id], page_size=1).runs["run_id"][0]
    with pytest.raises(InvalidInput, match="between 2 and 10"):
        compare_runs(registry, [run_id, run_id])
    with pytest.raises(NotFound):
        compare_runs(registry, [run_id, "0" * 32])


def test_models_versions_and_lineage(registry: Registry, policy: Policy) -> None:
    models = models_table(registry.list_models(policy.serving_target)).set_index("model")
    churn = models.loc[MODEL]
    assert churn["champion"] == "v1" and churn["versions"] == 3
    assert churn["tags"] == "domain=churn, owner=ml-platform" and churn["description"]
    metrics = key_metrics(policy, MODEL)
    assert metrics[0] == "roc_auc"
    table = versions_table(registry, MODEL, metrics)
    assert table["version"].tolist() == ["3", "2", "1"]
    assert table["aliases"].tolist() == ["", "", "champion"]
    assert table["stage"].tolist() == ["None", "None", "None"]
    assert table[metrics].notna().all().all()
    lineage = version_lineage(registry, MODEL, "2")
    assert lineage.experiment_name == training_experiment(MODEL)
    assert set(lineage.datasets["context"]) == {"training", "evaluation"}
    assert "reference/reference.parquet" in lineage.artifacts


def test_cli_compares_versions_as_a_table_or_csv(
    demo_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    compare_command.register(parser.add_subparsers())
    args = parser.parse_args(["compare", "--model", MODEL, "--versions", "1,2"])
    assert compare_command.handle(args, demo_settings) == 0
    text = capsys.readouterr().out
    assert "roc_auc (higher)" in text and "*" in text and "param model" in text
    args = parser.parse_args(["compare", "--model", MODEL, "--versions", "1,2", "--csv"])
    assert compare_command.handle(args, demo_settings) == 0
    assert capsys.readouterr().out.startswith("kind,name,better,v1,v2\nrun,run_id,,")
    with pytest.raises(InvalidInput, match="--versions"):
        compare_command.handle(parser.parse_args(["compare", "--model", MODEL]), demo_settings)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("fairness.gender.demographic_parity_difference", "lower"),
        ("fairness.gender.equal_opportunity_difference", "lower"),
        ("tpr_gap", "lower"),
        ("group_disparity", "lower"),
        ("fairness.gender.demographic_parity_ratio", "closer_to_one"),
        ("disparate_impact_ratio", "closer_to_one"),
        ("compression_ratio", "higher"),
        ("roc_auc", "higher"),
        ("val_log_loss", "lower"),
        # Regressors, by their short names and by the names mlflow.evaluate logs.
        ("rmse", "lower"),
        ("mae", "lower"),
        ("mse", "lower"),
        ("mape", "lower"),
        ("r2", "higher"),
        ("r2_score", "higher"),
        ("mean_squared_error", "lower"),
        ("root_mean_squared_error", "lower"),
        ("mean_absolute_error", "lower"),
        ("mean_absolute_percentage_error", "lower"),
        ("max_error", "lower"),
        ("absolute_error/mean", "lower"),
        ("mean_on_target", "higher"),
        # Regression fairness: differences are lower, ratios between groups closer to one.
        ("mae_difference", "lower"),
        ("mean_prediction_ratio", "closer_to_one"),
        ("fairness.neighborhood.rmse_ratio", "closer_to_one"),
        # What sklearn autolog logs on a sweep: durations and spreads are costs.
        ("mean_fit_time", "lower"),
        ("std_test_score", "lower"),
        ("mean_test_score", "higher"),
        ("p95_latency", "lower"),
    ],
)
def test_every_metric_has_one_direction(metric: str, direction: str) -> None:
    assert metric_direction(metric) == direction


def test_disparities_rank_lower_and_ratios_closer_to_one_as_better(
    registry: Registry, versions: Comparison
) -> None:
    dpd = "fairness.gender.demographic_parity_difference"
    ratio = "fairness.gender.demographic_parity_ratio"
    table = versions.metrics_table().set_index("metric")
    values = table[versions.labels].astype(float)
    best = versions.best_labels()
    # The demo's v2 is the unfair one: it must never be "best" on a disparity.
    assert values.loc[dpd].idxmax() == "v2" and "v2" not in best[dpd]
    assert best[dpd] == [values.loc[dpd].idxmin()]
    assert best[ratio] == [(1 - values.loc[ratio]).abs().idxmin()]
    # Candidate v2 against champion v1: the record and the CLI read these verdicts.
    deltas = metric_deltas(
        {dpd: 0.19, ratio: 0.70}, {dpd: 0.03, ratio: 0.95}, ModelPolicy()
    ).set_index("metric")
    assert deltas.loc[dpd, "regression"] > 0 and deltas.loc[ratio, "regression"] > 0
    # A ratio above 1 is as unfair as its inverse below 1.
    above = metric_deltas({ratio: 1.05}, {ratio: 0.90}, ModelPolicy()).set_index("metric")
    assert above.loc[ratio, "regression"] < 0


def test_the_experiments_page_opens_on_training_runs_not_the_panels_monitoring_runs() -> None:
    names = ["monitoring/churn-predictor", "Default", "training/churn-predictor", "team/churn"]
    assert browsing_order(names) == [
        "team/churn",
        "training/churn-predictor",
        "monitoring/churn-predictor",
        "Default",
    ]

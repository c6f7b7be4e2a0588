"""Nested runs on a team's store: top-level runs, child counts, children under their parent."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_core.errors import InvalidInput
from mlops_core.evidence.comparison import compare_runs, order_by_clause, runs_view
from mlops_core.evidence.run_tree import CHILD_MARK, run_tree_page, with_children
from mlops_core.stores.registry import Registry, top_level_rows
from tests.team_store import LONG_PARAM, TeamStore


@pytest.fixture(scope="module")
def registry(team_store: TeamStore) -> Registry:
    return Registry(team_store.tracking_uri)


@pytest.fixture(scope="module")
def experiments(team_store: TeamStore) -> list[str]:
    return [team_store.churn_experiment_id, team_store.house_experiment_id]


def test_top_level_runs_leave_the_sweep_children_out_on_the_server(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    page = registry.search_runs(experiments, top_level_only=True)
    ids = set(page.runs["run_id"])
    assert not page.top_level_on_client
    assert team_store.sweep_parent_run_id in ids and team_store.failed_run_id in ids
    assert not ids & set(team_store.sweep_child_run_ids)
    # The person's own filter still applies, joined with `and`.
    sweeps = registry.search_runs(experiments, "metrics.best_cv_score > 0", top_level_only=True)
    assert sweeps.runs["run_id"].tolist() == [team_store.sweep_parent_run_id]
    with pytest.raises(InvalidInput):
        registry.search_runs(experiments, "metrics.x >>> 1", top_level_only=True)


def test_a_server_without_is_null_gets_each_page_without_its_children(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    everything = registry.search_runs(experiments).runs
    assert set(top_level_rows(everything)["run_id"]) == set(
        registry.search_runs(experiments, top_level_only=True).runs["run_id"]
    )


def test_each_run_has_its_child_count_and_its_parent(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    tree = run_tree_page(registry, experiments)
    runs = tree.runs.set_index("run_id")
    assert tree.counts_complete
    assert runs.loc[team_store.sweep_parent_run_id, "children"] == 4
    assert set(runs.loc[list(team_store.sweep_child_run_ids), "parent"]) == {"lr-sweep"}
    assert runs.loc[team_store.failed_run_id, ["children", "status"]].tolist() == [0, "FAILED"]
    # Past the scan limit the counts are lower bounds, and say so.
    started = tree.runs["start_time"].min()
    partial = registry.child_counts(experiments, started, limit=2)
    assert not partial.complete and partial.counts[team_store.sweep_parent_run_id] == 2


def test_a_parents_children_are_listed_under_it_in_the_page_order(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    order = [order_by_clause("metrics.mean_test_score", descending=True)]
    tree = run_tree_page(registry, experiments, order_by=order, top_level_only=True)
    nested = with_children(registry, tree, experiments, [team_store.sweep_parent_run_id], order)
    ids = nested.runs["run_id"].tolist()
    parent_at = ids.index(team_store.sweep_parent_run_id)
    children = nested.runs.iloc[parent_at + 1 : parent_at + 5]
    assert set(children["run_id"]) == set(team_store.sweep_child_run_ids)
    assert children["run_name"].str.startswith(CHILD_MARK).all()
    scores = children["metrics.mean_test_score"].tolist()
    assert scores == sorted(scores, reverse=True)
    assert len(nested.runs) == len(tree.runs) + 4
    # A run without children, or one not on the page, is not expanded.
    same = with_children(registry, tree, experiments, [team_store.failed_run_id, "f" * 32])
    assert same.runs["run_id"].tolist() == tree.runs["run_id"].tolist()
    with pytest.raises(InvalidInput, match="not a run ID"):
        registry.child_runs(experiments, "x' or tags.a = 'b")


def test_mlflow_system_tags_are_columns_and_a_long_param_shows_its_start(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    runs = registry.search_runs(experiments).runs
    tags = {c for c in runs.columns if c.startswith("tags.mlflow.")}
    assert tags == {
        "tags.mlflow.parentRunId",
        "tags.mlflow.user",
        "tags.mlflow.source.name",
        "tags.mlflow.runName",
    }
    view = runs_view(runs, ["params.feature_list", "tags.mlflow.parentRunId"]).set_index("run_id")
    cell = view.loc[team_store.failed_run_id, "params.feature_list"]
    assert len(LONG_PARAM) > 2_000
    assert len(cell) < 250 and cell.endswith(f"({len(LONG_PARAM):,} characters)")
    assert view.loc[team_store.sweep_child_run_ids[0], "tags.mlflow.parentRunId"] == (
        team_store.sweep_parent_run_id
    )


def test_a_parent_compares_with_its_best_child(
    registry: Registry, experiments: list[str], team_store: TeamStore
) -> None:
    children = registry.child_runs(
        experiments,
        team_store.sweep_parent_run_id,
        [order_by_clause("metrics.mean_test_score", descending=True)],
        limit=1,
    ).runs
    best = children["run_id"].iloc[0]
    comparison = compare_runs(registry, [team_store.sweep_parent_run_id, best])
    metrics = comparison.metrics_table().set_index("metric")
    parent, child = comparison.labels
    # Autolog logs different metrics on the parent and its children: missing, not zero.
    assert pd.isna(metrics.loc["mean_test_score", parent])
    assert pd.isna(metrics.loc["best_cv_score", child])
    assert comparison.best_labels()["mean_test_score"] == [child]
    params = comparison.params_table().set_index("param")
    assert params.loc["C", child] is not None and params.loc["param_grid", parent]
    assert comparison.to_csv().count("\n") > len(metrics)

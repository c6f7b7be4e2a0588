"""Read access to a real MLflow store seeded with the demo scenario."""

import pytest

from mlops_core.config import Settings
from mlops_core.demo.scenario import training_experiment
from mlops_core.errors import NotFound, RegistryUnavailable
from mlops_core.stores.registry import Registry


@pytest.fixture(scope="module")
def registry(demo_settings: Settings) -> Registry:
    return Registry(demo_settings.tracking_uri)


def test_models_list_champion_versions_and_alias_change_time(registry: Registry) -> None:
    models = {m.name: m for m in registry.list_models(lambda _name: "champion")}
    assert set(models) == {"churn-predictor", "credit-default"}
    churn = models["churn-predictor"]
    assert churn.n_versions == 3
    assert churn.champion is not None and churn.champion.version == "1"
    assert churn.aliases == {"champion": "1"}
    assert churn.champion_changed_at is not None
    assert 0.5 < churn.champion_metrics["roc_auc"] < 1


def test_versions_carry_their_aliases_although_search_returns_none(registry: Registry) -> None:
    versions = registry.list_versions("churn-predictor")
    assert [v.version for v in versions] == ["3", "2", "1"]
    assert {v.version: v.aliases for v in versions} == {
        "3": (),
        "2": (),
        "1": ("champion",),
    }
    assert registry.get_version("churn-predictor", "1").aliases == ("champion",)


def test_version_behind_an_alias(registry: Registry) -> None:
    assert registry.version_by_alias("credit-default", "champion").version == "1"
    assert registry.version_by_alias("credit-default", "no-such-alias") is None


def test_source_run_has_params_metrics_and_dataset_inputs(registry: Registry) -> None:
    version = registry.get_version("churn-predictor", "2")
    run = registry.get_run(version.run_id)
    assert run.params["model"] == "hist_gradient_boosting"
    assert set(run.metrics) >= {"roc_auc", "f1", "precision", "recall", "accuracy", "log_loss"}
    contexts = {d.context: d.name for d in run.datasets}
    assert contexts == {
        "training": "churn-predictor-train",
        "evaluation": "churn-predictor-evaluation",
    }
    artifacts = registry.list_artifacts(version.run_id)
    assert "reference/reference.parquet" in artifacts
    assert "evaluation/evaluation.parquet" in artifacts


def test_runs_are_paginated_by_the_server(registry: Registry) -> None:
    experiment = registry.experiment_by_name(training_experiment("churn-predictor"))
    first = registry.search_runs([experiment.experiment_id], page_size=4)
    assert len(first.runs) == 4 and first.next_page_token
    second = registry.search_runs(
        [experiment.experiment_id], page_size=4, page_token=first.next_page_token
    )
    assert set(first.runs.run_id).isdisjoint(second.runs.run_id)
    assert "metrics.roc_auc" in first.runs.columns


def test_unknown_model_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound):
        registry.list_versions("no-such-model")


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(RegistryUnavailable, match="Cannot reach the MLflow tracking server"):
        Registry("http://127.0.0.1:9").list_models()

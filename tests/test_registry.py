"""Read access to a real MLflow store seeded with the demo scenario."""

import threading
import time
from pathlib import Path

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


def _two_versions(folder: Path) -> Registry:
    """A store a team made with stock MLflow: model "m" with v1 at alias champion, and v2."""
    registry = Registry(f"sqlite:///{folder}/mlflow.db")
    registry.client.create_registered_model("m")
    for _ in range(2):
        registry.client.create_model_version("m", str(folder / "model"))
    registry.client.set_registered_model_alias("m", "champion", "1")
    return registry


def test_a_reading_once_view_answers_every_read_as_it_first_found_it(tmp_path: Path) -> None:
    registry = _two_versions(tmp_path)
    view = registry.reading_once()
    assert view.version_by_alias("m", "champion").version == "1"
    registry.client.set_registered_model_alias("m", "champion", "2")
    # The gates of one decision all see the state the evaluation started from ...
    assert view.version_by_alias("m", "champion").version == "1"
    assert view.get_version("m", "1").aliases == ("champion",)
    # ... and nothing else does: the registry itself and a new view read it afresh.
    assert registry.version_by_alias("m", "champion").version == "2"
    assert registry.reading_once().version_by_alias("m", "champion").version == "2"


def test_a_question_asked_by_two_threads_at_once_is_asked_once(tmp_path: Path) -> None:
    view = _two_versions(tmp_path).reading_once()
    calls: list[str] = []

    def slow_read() -> str:
        calls.append("asked")
        time.sleep(0.2)
        return "answer"

    answers: list[str] = []
    threads = [
        threading.Thread(target=lambda: answers.append(view.once("q", slow_read))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["answer"] * 4 and calls == ["asked"]


def test_a_read_that_failed_fails_again_in_the_view_but_not_outside_it(
    tmp_path: Path,
) -> None:
    registry = _two_versions(tmp_path)
    view = registry.reading_once()
    for _ in range(2):
        with pytest.raises(NotFound):
            view.get_version("m", "9")
    registry.client.create_model_version("m", str(tmp_path / "model"))
    assert registry.get_version("m", "3").version == "3"

"""Lineage of versions on a team's store: MLflow 3 logged models, runs' own artifacts, stages."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from mlops_core.config import Settings
from mlops_core.evidence.comparison import models_table, versions_table
from mlops_core.evidence.lineage import readable_source, version_lineage
from mlops_core.stores.registry import Registry, logged_model_id
from tests.team_store import TeamStore


@pytest.fixture(scope="module")
def registry(team_store: TeamStore) -> Registry:
    return Registry(team_store.tracking_uri)


def test_an_mlflow_3_version_shows_its_logged_model(
    registry: Registry, team_store: TeamStore
) -> None:
    lineage = version_lineage(registry, "team-churn", "1")
    model = lineage.logged_model
    assert model is not None and lineage.logged_model_problem is None
    assert lineage.version.source == f"models:/{model.model_id}"
    assert {"sklearn", "python_function"} <= set(model.flavors or ())
    assert model.has_signature is True
    assert model.source_run_id == lineage.run.run_id == team_store.churn_v1_run_id
    assert "MLmodel" in model.artifacts and lineage.artifacts == []
    assert lineage.logged_model_params.set_index("param").loc["max_iter", "value"] == "300"
    metrics = lineage.logged_model_metrics.set_index("metric")
    assert metrics.loc["roc_auc", "value"] == pytest.approx(lineage.run.metrics["roc_auc"])
    assert set(lineage.datasets["context"]) == {"training", "evaluation"}
    assert lineage.version.tags == {"validated_by": "qa-team"}
    nosig = version_lineage(registry, "team-nosig", "1").logged_model
    assert nosig is not None and nosig.has_signature is False


def test_a_version_from_run_artifacts_and_a_deleted_logged_model(
    team_settings: Settings, team_store: TeamStore
) -> None:
    client = MlflowClient(team_settings.tracking_uri)
    run = client.get_run(team_store.churn_eval_run_id)
    client.create_registered_model("from-run")
    client.create_model_version("from-run", f"{run.info.artifact_uri}/model", run.info.run_id)
    registry = Registry(team_settings.tracking_uri)
    lineage = version_lineage(registry, "from-run", "1")
    # Before MLflow 3, the model's files are the run's artifacts.
    assert lineage.logged_model is None and lineage.logged_model_problem is None
    assert "roc_curve_plot.png" in lineage.artifacts

    gone = registry.get_version("team-churn", "2").logged_model_id
    client.delete_logged_model(gone)
    lineage = version_lineage(registry, "team-churn", "2")
    assert lineage.logged_model is None and gone in lineage.logged_model_problem
    assert lineage.run.run_id == team_store.churn_v2_run_id


def test_logged_model_ids_come_only_from_models_uris() -> None:
    assert logged_model_id("models:/m-0123abcd") == "m-0123abcd"
    assert logged_model_id("models:/team-churn/1") is None
    assert logged_model_id("runs:/abc/model") is None
    assert logged_model_id("file:///tmp/m-0123abcd") is None


def test_stages_of_a_registry_from_before_aliases(registry: Registry) -> None:
    versions = versions_table(registry, "team-legacy-fraud", ["roc_auc"])
    assert versions[["version", "stage"]].values.tolist() == [["2", "Staging"], ["1", "Production"]]
    models = models_table(registry.list_models()).set_index("model")
    assert models.loc["team-legacy-fraud", "stages"] == "Production: v1 · Staging: v2"
    assert models.loc["team-churn", "stages"] == ""
    assert models.loc["team-churn", "tags"] == "owner=growth"
    lineage = version_lineage(registry, "team-legacy-fraud", "1")
    assert lineage.version.stage == "Production"
    churn = versions_table(registry, "team-churn", [])
    assert churn["tags"].tolist() == ["validated_by=qa-team"] * 2
    assert set(churn["stage"]) == {"None"}


@pytest.mark.parametrize(
    ("source_type", "source", "shown"),
    [
        ("local", '{"uri": "/data/churn-train.parquet"}', "/data/churn-train.parquet"),
        ("http", '{"url": "https://example.invalid/x.csv"}', "https://example.invalid/x.csv"),
        (
            "code",
            '{"tags": {"mlflow.user": "ana", "mlflow.source.name": "train.py"}}',
            "in memory, logged by train.py",
        ),
        ("delta_table", '{"path": "s3://bucket/table"}', "s3://bucket/table"),
        ("weird", "not json", "not json"),
    ],
)
def test_a_datasets_source_reads_as_a_location_not_json(
    source_type: str, source: str, shown: str
) -> None:
    assert readable_source(source_type, source) == shown

"""Finding a version's reference and evaluation data in a team's store without a policy:
the policy, the run's logged datasets, the `mlflow.evaluate` table, the demo convention."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, NotFound
from mlops_core.evidence.fairness_evidence import fairness_config, with_found_columns
from mlops_core.policy import DataSources, ModelPolicy, parse_policy
from mlops_core.stores.data_discovery import find_data
from mlops_core.stores.registry import Registry, VersionInfo
from tests.apptest import VIEWER, assert_no_exception, shown
from tests.team_store import TeamStore, churn_frame
from tests.test_pages_data import csv_bytes, open_page, upload

NO_POLICY = ModelPolicy()


@pytest.fixture(scope="module")
def registry(team_store: TeamStore) -> Registry:
    # Only read here: the session's store itself.
    return Registry(team_store.tracking_uri)


def version(registry: Registry, model: str, number: str) -> VersionInfo:
    return registry.get_version(model, number)


def test_reference_and_evaluation_are_the_datasets_logged_with_the_run(
    registry: Registry, team_store: TeamStore
) -> None:
    v1 = version(registry, "team-churn", "1")
    reference = find_data(registry, NO_POLICY, v1, "reference")
    evaluation = find_data(registry, NO_POLICY, v1, "evaluation")
    assert (reference.kind, evaluation.kind) == ("logged_dataset", "logged_dataset")
    assert reference.description.startswith(
        f"training dataset 'churn-train' logged with run {team_store.churn_v1_run_id} "
        "(mlflow.log_input), "
    )
    assert "evaluation dataset 'churn-eval'" in evaluation.description
    # The very rows the team trained on (the source file, its digest checked).
    expected = churn_frame(600, 1)
    pd.testing.assert_frame_equal(reference.loaded.frame, expected)
    assert reference.loaded.total_rows == 600 and len(evaluation.loaded.frame) == 300


def test_the_sample_size_applies_to_discovered_data(registry: Registry) -> None:
    found = find_data(registry, NO_POLICY, version(registry, "team-churn", "2"), "reference", 50)
    assert len(found.loaded.frame) == 50 and found.loaded.caption == "sample of 50 out of 600 rows"


def test_evaluation_without_a_dataset_comes_from_the_mlflow_evaluate_table(
    registry: Registry, team_store: TeamStore
) -> None:
    # v2's run logged only training data; a separate run evaluated its logged model.
    v2 = version(registry, "team-house-price", "2")
    found = find_data(registry, NO_POLICY, v2, "evaluation")
    assert found.kind == "evaluation_table"
    assert team_store.house_eval_run_id in found.description
    assert (found.label_column, found.prediction_column) == ("price", "outputs")
    frame = found.loaded.frame
    assert len(frame) == 250 and {"rooms", "price", "outputs"} <= set(frame.columns)
    # The training run's own dataset is still the reference.
    reference = find_data(
        registry, NO_POLICY, version(registry, "team-house-price", "2"), "reference"
    )
    assert reference.kind == "logged_dataset" and "'houses'" in reference.description


def test_fairness_reads_label_and_prediction_from_the_evaluate_table(registry: Registry) -> None:
    # The table names its own target and output columns, whatever the policy's defaults
    # ("label", "score") call them.
    found = find_data(registry, NO_POLICY, version(registry, "team-house-price", "2"), "evaluation")
    config = fairness_config(with_found_columns(NO_POLICY, found), ["neighborhood"])
    assert (config.label, config.prediction, config.score) == ("price", "outputs", None)
    logged = find_data(registry, NO_POLICY, version(registry, "team-churn", "1"), "evaluation")
    assert with_found_columns(NO_POLICY, logged) is NO_POLICY


def test_nothing_found_names_every_option_in_order(registry: Registry) -> None:
    v1 = version(registry, "team-house-price", "1")
    with pytest.raises(NotFound) as raised:
        find_data(registry, NO_POLICY, v1, "evaluation")
    message = str(raised.value)
    steps = [
        'data.evaluation under [models."team-house-price".data]',
        "mlflow.log_input(dataset, context=",
        "eval_results_table.json",
        "evaluation/evaluation.parquet",
    ]
    positions = [message.index(step) for step in steps]
    assert positions == sorted(positions), message
    assert "logged no evaluation / eval / validation / test dataset" in message


def test_a_location_the_policy_names_wins_and_is_never_second_guessed(
    registry: Registry, team_store: TeamStore, tmp_path: Path
) -> None:
    path = tmp_path / "reference.csv"
    churn_frame(40, 9).to_csv(path, index=False)
    v1 = version(registry, "team-churn", "1")
    policy = ModelPolicy(data=DataSources(reference=str(path)))
    found = find_data(registry, policy, v1, "reference")
    assert found.kind == "policy" and found.loaded.total_rows == 40
    assert found.description == "file reference.csv (policy data.reference)"
    # A wrong location is an error, not a reason to use the logged dataset instead.
    wrong = ModelPolicy(data=DataSources(reference="artifact:reference/reference.parquet"))
    with pytest.raises(NotFound, match="has no artifact 'reference/reference.parquet'"):
        find_data(registry, wrong, v1, "reference")


def test_a_policy_without_data_locations_leaves_them_to_discovery() -> None:
    policy = parse_policy('[defaults.data]\nlabel_column = "churned"\n', "test")
    assert policy.for_model("team-churn").data.reference is None


def test_the_demo_convention_is_found_without_a_policy(demo_settings: Settings) -> None:
    registry = Registry(demo_settings.tracking_uri)
    champion = registry.version_by_alias("churn-predictor", "champion")
    assert champion is not None
    found = find_data(registry, NO_POLICY, champion, "reference", 100)
    assert found.kind == "artifact_convention"
    assert found.description == (
        f"artifact reference/reference.parquet of run {champion.run_id} "
        "(the panel's artifact convention)"
    )


def _register(client: MlflowClient, run_id: str, name: str) -> VersionInfo:
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    return Registry(client.tracking_uri).get_version(name, "1")


def test_a_changed_source_falls_back_to_the_artifact_with_the_logged_digest(
    team_settings: Settings, tmp_path: Path
) -> None:
    frame = churn_frame(120, 11)
    source = tmp_path / "train.parquet"
    frame.to_parquet(source)
    client = MlflowClient(team_settings.tracking_uri)
    experiment = client.create_experiment("copied", artifact_location=(tmp_path / "a").as_uri())
    mlflow.set_tracking_uri(team_settings.tracking_uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run(experiment_id=experiment) as run:
                dataset = mlflow.data.from_pandas(frame, source=str(source), name="train")
                mlflow.log_input(dataset, context="training")
                mlflow.log_artifact(str(source), "data")
    finally:
        mlflow.set_tracking_uri(None)
    registry = Registry(team_settings.tracking_uri)
    found_version = _register(client, run.info.run_id, "copied-model")
    # The file at the source was overwritten since: its rows no longer match the digest.
    churn_frame(120, 12).to_parquet(source)
    found = find_data(registry, NO_POLICY, found_version, "reference")
    assert found.kind == "logged_dataset"
    assert (
        "artifact data/train.parquet" in found.description and "digest matches" in found.description
    )
    pd.testing.assert_frame_equal(found.loaded.frame, frame)
    # Without that artifact, the change is named, not silently accepted.
    (tmp_path / "a").rename(tmp_path / "gone")
    with pytest.raises(NotFound, match="no longer matches the digest MLflow recorded"):
        find_data(registry, NO_POLICY, found_version, "reference")


def test_the_evaluation_table_is_held_to_the_data_limits(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_MAX_DATA_ROWS", "100")
    with pytest.raises(InvalidInput, match="over the limit of 100"):
        find_data(registry, NO_POLICY, version(registry, "team-house-price", "2"), "evaluation")


def test_the_profile_page_says_where_the_reference_came_from(
    monkeypatch: pytest.MonkeyPatch, team_settings: Settings
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_settings.tracking_uri)
    at = open_page(monkeypatch, team_settings, "data_profiles.py", VIEWER)
    at.selectbox(key="model").set_value("team-churn").run()
    at = upload(at, "current.csv", csv_bytes(churn_frame(200, 3)))
    captions = "\n".join(shown(c) for c in at.caption)
    assert "training dataset 'churn-train' logged with run" in captions
    assert "(mlflow.log_input)" in captions
    assert_no_exception(at)
    # A model whose runs logged no data: the page says where it looked and what to set.
    at.selectbox(key="model").set_value("team-legacy-fraud").run()
    assert_no_exception(at)
    error = shown(at.error[0])
    assert error.startswith("No reference data found for team-legacy-fraud v")
    assert (
        error.index("data.reference")
        < error.index("mlflow.log_input")
        < error.index("reference/reference.parquet")
    )


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder: (base URL, folder)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_a_dataset_logged_from_an_http_source_is_loaded_from_there(
    team_settings: Settings, http_folder: tuple[str, Path]
) -> None:
    base, folder = http_folder
    frame = churn_frame(80, 13)
    frame.to_parquet(folder / "eval.parquet")
    mlflow.set_tracking_uri(team_settings.tracking_uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run() as run:
                dataset = mlflow.data.from_pandas(
                    frame, source=f"{base}/eval.parquet", name="served-eval"
                )
                mlflow.log_input(dataset, context="eval")
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(team_settings.tracking_uri)
    found = find_data(
        Registry(team_settings.tracking_uri),
        NO_POLICY,
        _register(client, run.info.run_id, "served-model"),
        "evaluation",
    )
    assert found.kind == "logged_dataset"
    assert found.description.endswith(f"(mlflow.log_input), {base}/eval.parquet")
    pd.testing.assert_frame_equal(found.loaded.frame, frame)

"""Drift checks logged as MLflow runs and read back as history, on a real store."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import ViewType

from mlops_core.config import Settings
from mlops_core.demo.evidence import seed_drift_history
from mlops_core.errors import InvalidInput, MlopsError, PermissionDenied, RegistryUnavailable
from mlops_core.evidence.monitoring import (
    check_model_drift,
    drift_history,
    drift_report,
    latest_drift_status,
    log_drift_check,
    model_windows,
    monitoring_experiment,
)
from mlops_core.policy import load_policy
from mlops_core.stores import audit, db
from mlops_core.stores.evidence_digests import check_evidence
from mlops_core.stores.model_data import drift_columns, load_reference
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import as_loaded
from tests.apptest import APPROVER, VIEWER
from tests.conftest import settings_for

CHURN, CREDIT = "churn-predictor", "credit-default"
CHURN_DRIFTING = {"monthly_charges", "support_calls", "contract_type"}
# panel.db holds the demo accounts.
STORE_FILES = ("mlflow.db", "inference.db", "policy.toml", "panel.db")


def copy_store(demo_settings: Settings, folder: Path) -> Settings:
    """The demo store's databases in a folder of their own, to log runs into, without
    any drift history.

    Artifacts already stored stay where the demo put them (MLflow records absolute
    locations); what a test logs lands under the copy's own artifact folder.
    """
    for name in STORE_FILES:
        shutil.copy2(demo_settings.data_dir / name, folder / name)
    settings = settings_for(folder)
    # A panel database of its own, for the digests of the evidence a test logs.
    db.upgrade(settings.db_url)
    # Tests start from an empty drift history, whether or not the demo seeded one.
    client = Registry(settings.tracking_uri).client
    for experiment in client.search_experiments(filter_string="name LIKE 'monitoring/%'"):
        client.rename_experiment(experiment.experiment_id, f"seeded {experiment.name}")
        client.delete_experiment(experiment.experiment_id)
    return settings


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = copy_store(demo_settings, tmp_path_factory.mktemp("monitoring-store"))
    seed_drift_history(settings, APPROVER, [CHURN])
    return settings


@pytest.fixture(scope="module")
def registry(store: Settings) -> Registry:
    return Registry(store.tracking_uri)


def test_demo_history_has_one_run_per_week_and_the_drift_from_week_five(
    store: Settings, registry: Registry
) -> None:
    history = drift_history(registry, CHURN)
    windows = model_windows(store, CHURN)
    assert len(windows) == 8
    assert list(history["window_start"]) == [pd.Timestamp(start) for start, _ in windows]
    assert list(history["window_end"]) == [pd.Timestamp(end) for _, end in windows]
    for column in CHURN_DRIFTING:
        scores = history[f"drift.{column}"]
        assert scores.iloc[4:].min() > scores.iloc[:4].max(), column
    stable = [c for c in history if c.startswith("drift.") and c[6:] not in CHURN_DRIFTING]
    assert stable and (history[stable] < 0.1).all().all()
    assert (history["drift_share"].iloc[:4] == 0).all()
    assert (history["drift_share"].iloc[4:] == 3 / 8).all()
    assert set(history["drifted_columns"].iloc[-1].split(",")) == CHURN_DRIFTING


def test_seeding_again_adds_nothing(store: Settings, registry: Registry) -> None:
    assert seed_drift_history(store, APPROVER, [CHURN]) == []
    assert len(drift_history(registry, CHURN)) == 8


def test_logged_run_holds_params_metrics_tag_and_evidently_artifacts(
    store: Settings, registry: Registry
) -> None:
    latest = drift_history(registry, CHURN).iloc[-1]
    run_id = latest["run_id"]
    run = registry.get_run(run_id)
    assert run.params["reference_version"] == "1"
    assert pd.Timestamp(run.params["window_start"]) == latest["window_start"]
    assert run.params["sample_size"] == "100000"
    assert set(run.params["methods"].split(",")) == {"jensenshannon", "wasserstein"}
    assert run.metrics["drift_share"] == pytest.approx(3 / 8)
    assert run.tags["mlops.drift.drifted"] == "false"
    artifacts = set(registry.list_artifacts(run_id))
    assert artifacts == {"drift/summary.json", "drift/snapshot.json", "drift/report.html"}
    local = registry.client.download_artifacts(run_id, "drift/summary.json")
    summary = json.loads(Path(local).read_text())
    assert summary["model"] == CHURN and len(summary["columns"]) == 8
    assert summary["columns"][0]["drifted"] is True
    # The digest of every file stored is in the audit log.
    for path in artifacts:
        data = Path(registry.client.download_artifacts(run_id, path)).read_bytes()
        assert check_evidence(store.db_url, CHURN, run_id, path, data).verified, path


def test_latest_status_for_the_overview(registry: Registry) -> None:
    status = latest_drift_status(registry, CHURN)
    assert status is not None
    assert status.drifted is False and status.drift_share == pytest.approx(3 / 8)
    assert set(status.drifted_columns) == CHURN_DRIFTING
    assert status.label.startswith("no drift: 38% of columns drifted (")
    assert status.label.endswith(
        f"window {status.window_start:%Y-%m-%d} to {status.window_end:%Y-%m-%d}"
    )
    # The overview's cells: short enough to keep every column on screen.
    assert status.verdict == "no drift (38% of columns)"
    assert status.window == f"{status.window_start:%Y-%m-%d} to {status.window_end:%m-%d}"
    assert latest_drift_status(registry, CREDIT) is None


def test_a_failed_upload_leaves_no_run(store: Settings, registry: Registry) -> None:
    # An artifact location nobody can write to: the run is created, the upload fails.
    registry.client.create_experiment(
        monitoring_experiment(CREDIT), artifact_location="file:///dev/null/artifacts"
    )
    check = check_model_drift(store, registry, CREDIT, sample_size=500)
    with pytest.raises(RegistryUnavailable, match="nothing was logged"):
        log_drift_check(store, registry, check, drift_report(check, 200), APPROVER)
    assert drift_history(registry, CREDIT).empty
    experiment = registry.experiment_by_name(monitoring_experiment(CREDIT))
    assert registry.search_runs([experiment.experiment_id]).runs.empty
    deleted = registry.client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert [run.info.lifecycle_stage for run in deleted] == ["deleted"]


def test_an_upload_is_checked_but_not_logged(store: Settings, registry: Registry) -> None:
    policy = load_policy(store.policy_file).for_model(CHURN)
    champion = registry.version_by_alias(CHURN)
    reference = load_reference(registry, policy, champion).frame
    upload = as_loaded(reference.assign(monthly_charges=reference.monthly_charges * 3), "upload")
    check = check_model_drift(store, registry, CHURN, current=upload)
    assert check.result.drifted_columns == ["monthly_charges"]
    with pytest.raises(InvalidInput, match="upload has no window"):
        log_drift_check(store, registry, check, drift_report(check, 200), APPROVER)


def test_an_empty_window_is_a_clear_error(store: Settings, registry: Registry) -> None:
    window = (datetime(2001, 1, 1), datetime(2001, 1, 8))
    with pytest.raises(InvalidInput, match="no rows"):
        check_model_drift(store, registry, CHURN, window=window)


def test_drift_columns_leave_out_the_bookkeeping(store: Settings, registry: Registry) -> None:
    check = check_model_drift(store, registry, CHURN, window=(None, None), sample_size=1000)
    policy = load_policy(store.policy_file).for_model(CHURN)
    compared = drift_columns(policy, check.reference.frame, check.current.frame)
    assert not set(compared) & {"timestamp", "model", "model_version", "score", "prediction"}
    assert "label" not in compared and set(compared) >= CHURN_DRIFTING
    assert check.current.is_sample and check.result.n_current == 1000


def test_an_unknown_model_is_a_clear_error(store: Settings, registry: Registry) -> None:
    with pytest.raises(MlopsError, match="nope"):
        check_model_drift(store, registry, "nope")


def test_a_viewer_cannot_log_a_check_and_a_writer_is_named_in_the_audit_log(
    store: Settings, registry: Registry
) -> None:
    check = check_model_drift(store, registry, CHURN, sample_size=500)
    report = drift_report(check, 200)
    before = len(drift_history(registry, CHURN))
    for nobody in (VIEWER, None):
        with pytest.raises(PermissionDenied, match="requester or approver role|Not signed in"):
            log_drift_check(store, registry, check, report, nobody)
    assert len(drift_history(registry, CHURN)) == before
    run_id = log_drift_check(store, registry, check, report, APPROVER)
    (event,) = [
        e
        for e in audit.list_events(store.db_url, audit.AuditFilter(action="evidence_recorded"))
        if e.details.get("run_id") == run_id
    ]
    assert event.actor == APPROVER.username and event.model_name == CHURN

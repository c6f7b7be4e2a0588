"""The demo scenario is realistic, deterministic and idempotent."""

import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference

from mlops_core.config import Settings
from mlops_core.demo.data import SPECS
from mlops_core.demo.scenario import DRIFT_FROM_WEEK, WEEKS, inference_table, run_demo
from mlops_core.errors import PermissionDenied
from mlops_core.evidence.behaviour.store import stored_check_report
from mlops_core.governance.checks_gate import CHECKS_KIND
from mlops_core.governance.gates import FAILED, PASSED, evaluate_gates
from mlops_core.people.auth import resolve_local_actor
from mlops_core.people.user_admin import BOOTSTRAP
from mlops_core.policy import BOOKKEEPING_COLUMNS
from mlops_core.rollout.router import LOG_COLUMNS
from mlops_core.rollout.state import list_rollouts
from mlops_core.rollout.traffic import serves_challenger
from mlops_core.stores import audit
from mlops_core.stores.db import get_engine
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import load_run_artifact_frame
from tests.conftest import TEST_SWEEP_RUNS
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def registry(demo_settings: Settings) -> Registry:
    return Registry(demo_settings.tracking_uri)


def _evaluation(registry: Registry, model: str, version: str) -> tuple[dict, pd.DataFrame]:
    run_id = registry.get_version(model, version).run_id
    frame = load_run_artifact_frame(registry.client, run_id, "evaluation/evaluation.parquet").frame
    return registry.get_run(run_id).metrics, frame


def test_loading_is_an_audited_admin_action_and_a_second_run_adds_nothing(
    demo_settings: Settings,
) -> None:
    loads = audit.AuditFilter(action="demo_loaded")
    (loaded,) = audit.list_events(demo_settings.db_url, loads)
    # The first load met an empty account store: nobody to ask, so the bootstrap acted.
    assert loaded.actor == BOOTSTRAP.username
    assert "demo account admin" in loaded.details["extra"]
    with pytest.raises(PermissionDenied, match="Not signed in"):
        run_demo(demo_settings, sweep_runs=TEST_SWEEP_RUNS)
    approver = resolve_local_actor(demo_settings, "approver")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        run_demo(demo_settings, sweep_runs=TEST_SWEEP_RUNS, actor=approver)
    admin = resolve_local_actor(demo_settings, "admin")
    report = run_demo(demo_settings, sweep_runs=TEST_SWEEP_RUNS, actor=admin)
    assert not report.added_anything
    assert len(audit.list_events(demo_settings.db_url, loads)) == 1


@pytest.mark.parametrize("model", [spec.name for spec in SPECS])
def test_candidates_make_approving_and_rejecting_real_decisions(
    registry: Registry, model: str
) -> None:
    """v2 beats the champion but is unfair; v3 beats it and is fair enough."""
    champion, champion_eval = _evaluation(registry, model, "1")
    unfair, unfair_eval = _evaluation(registry, model, "2")
    fair, fair_eval = _evaluation(registry, model, "3")

    def disparity(frame: pd.DataFrame) -> float:
        return demographic_parity_difference(
            frame.label, frame.prediction, sensitive_features=frame.gender
        )

    assert unfair["roc_auc"] > fair["roc_auc"] > champion["roc_auc"]
    assert disparity(unfair_eval) > 0.1
    assert disparity(fair_eval) < 0.05
    assert disparity(champion_eval) < 0.05
    assert {"gender", "age_band", "label", "score", "prediction"} <= set(fair_eval.columns)


def test_every_version_carries_its_behaviour_checks(
    demo_settings: Settings, registry: Registry
) -> None:
    for spec in SPECS:
        for version in registry.list_versions(spec.name):
            stored = stored_check_report(demo_settings, spec.name, version.version)
            report = stored.report
            assert report is not None and report.completed, (spec.name, version.version, stored)
            assert report.deterministic and report.missing_values == "clear_error"
            assert "sha256 matches audit event" in stored.source


def test_the_slow_version_fails_the_latency_gate_and_the_fair_one_passes_it(
    demo_settings: Settings, registry: Registry
) -> None:
    def checks(version: str) -> dict:
        report = evaluate_gates(demo_settings, registry, "credit-default", version)
        return {g.name: g for g in report.results if g.kind == CHECKS_KIND}

    slow = checks("2")
    latency = slow.pop("checks latency_p99_ms")
    assert latency.status == FAILED and latency.observed > 50 and latency.threshold == 50
    assert {g.status for g in slow.values()} == {PASSED}
    fast = checks("3")
    assert set(fast) == {"checks latency_p99_ms", "checks deterministic", "checks missing_values"}
    assert {g.status for g in fast.values()} == {PASSED}, fast
    assert fast["checks latency_p99_ms"].observed < 50


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_inference_log_covers_eight_weeks_with_delayed_labels(
    demo_settings: Settings, spec
) -> None:
    log = pd.read_sql_table(inference_table(spec.name), get_engine(demo_settings.inference_db_url))
    assert set(spec.features) <= set(log.columns)
    assert {"timestamp", "model", "model_version", "score", "prediction", "label"} <= set(
        log.columns
    )
    span = log.timestamp.max() - log.timestamp.min()
    assert pd.Timedelta(days=7 * WEEKS - 1) < span <= pd.Timedelta(days=7 * WEEKS)
    assert 0 < log.label.notna().mean() < 1
    assert log.label.isna().iloc[-1] and log.label.notna().iloc[0]


def test_credit_default_traffic_went_through_the_router_by_the_published_rollout(
    demo_settings: Settings,
) -> None:
    log = pd.read_sql_table("inference_credit_default", get_engine(demo_settings.inference_db_url))
    # The router's own columns, which no check mistakes for model inputs.
    assert set(LOG_COLUMNS) <= set(log.columns) and set(LOG_COLUMNS) <= set(BOOKKEEPING_COLUMNS)
    assert log.served.all() and log.error.isna().all() and (log.latency_ms > 0).all()
    assert log.request_id.is_unique  # split traffic: one version answers each request
    (rollout,) = list_rollouts(demo_settings, "credit-default")
    started = log.timestamp >= rollout.stage_started_at
    challenger = log.request_id.map(lambda rid: serves_challenger(rid, 10))
    # Before the rollout the champion answered everything; after, the 10% stage's bucket.
    assert set(log[~started].model_version) == {"1"}
    assert (log[started].model_version == "3").equals(challenger[started])
    assert 0.07 < challenger[started].mean() < 0.13


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_drifting_features_shift_from_week_five(demo_settings: Settings, spec) -> None:
    log = pd.read_sql_table(inference_table(spec.name), get_engine(demo_settings.inference_db_url))
    week = (log.timestamp - log.timestamp.min()).dt.days // 7 + 1
    early, late = log[week < DRIFT_FROM_WEEK], log[week >= DRIFT_FROM_WEEK]
    for column in spec.numeric:
        shift = abs(late[column].mean() - early[column].mean()) / early[column].std()
        if column in spec.drifting:
            assert shift > 0.3, column
        else:
            assert shift < 0.1, column


def test_sweeps_give_comparison_material(registry: Registry) -> None:
    experiment = registry.experiment_by_name("training/churn-predictor")
    sweep = registry.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlops.demo` = 'sweep'", page_size=100
    )
    assert len(sweep.runs) == TEST_SWEEP_RUNS
    assert sweep.runs["params.model"].nunique() == 3
    boosted = sweep.runs[sweep.runs["params.model"] == "gradient_boosting"].run_id.iloc[0]
    assert len(registry.metric_history(boosted, "val_log_loss")) >= 20


def test_make_runs_first_step_seeds_a_fresh_data_folder(tmp_path) -> None:
    # `make run` on a new machine: no data folder, no panel database, no account.
    fresh = {"MLOPS_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("demo", "--if-empty", "--sweep-runs", "1", env=fresh)
    assert result.returncode == 0, result.stderr
    assert "Demo scenario written" in result.stdout and "demo account admin" in result.stdout
    again = run_cli("demo", "--if-empty", env=fresh)
    assert again.returncode == 0 and "already has models" in again.stdout

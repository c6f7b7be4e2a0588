"""The worker's jobs on the demo: drift of the latest complete week logged and announced,
gates of registered versions kept and shown on the Models page, the schedule's next runs."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mlops_core.config import Settings, load_settings
from mlops_core.errors import ConfigError
from mlops_core.evidence.behaviour.store import stored_check_report
from mlops_core.evidence.monitoring import drift_history, monitoring_experiment
from mlops_core.evidence.quality_runs import quality_history
from mlops_core.governance.version_gates import stored_gates
from mlops_core.policy import Policy
from mlops_core.stores import audit, db
from mlops_core.stores.job_runs import RetryRule, RunRecord
from mlops_core.stores.registry import Registry
from mlops_core.stores.worker_tables import NotificationOutbox
from mlops_core.worker.jobs import (
    JOBS,
    latest_complete_week,
    run_behaviour_checks,
    run_drift,
    run_quality,
    run_rollout_tick,
)
from mlops_core.worker.reactions import VERSION_CREATED, RegistryEvent, react
from mlops_core.worker.schedule import JobContext, intervals, next_due, slot_of
from tests.apptest import open_page
from tests.conftest import settings_for
from tests.test_pages_checks import own_version
from tests.test_promotion import copy_demo_env

MODEL = "churn-predictor"


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A copy of the demo whose policy alerts from a quarter of drifted columns on (the
    demo's drifted weeks have 37.5%)."""
    env = copy_demo_env(demo_settings, tmp_path_factory.mktemp("worker-jobs"))
    policy = Path(env["MLOPS_DATA_DIR"]) / "policy.toml"
    text = Path(env["MLOPS_POLICY_FILE"]).read_text()
    policy.write_text(text.replace("max_drift_share = 0.5 ", "max_drift_share = 0.25"))
    env = {**env, "MLOPS_POLICY_FILE": str(policy)}
    db.upgrade(load_settings(env).db_url)
    return env


def test_the_drift_job_logs_the_latest_complete_week_once_and_announces_drift(
    env: dict[str, str],
) -> None:
    settings = load_settings(env)
    registry = Registry(settings.tracking_uri)
    history = drift_history(registry, MODEL)
    bounds = (history["window_start"].min().to_pydatetime(), datetime.now())
    week = latest_complete_week(bounds, datetime.now())
    # Forget the demo's check of that week, so the job finds it unchecked.
    for run_id in history.loc[history["window_start"] == week[0], "run_id"]:
        registry.client.delete_run(run_id)
    summary = run_drift(JobContext(settings, "test"))
    assert f"{MODEL}: drifted" in summary and "credit-default: window" in summary
    after = drift_history(registry, MODEL)
    assert (after["window_start"] == week[0]).sum() == 1
    with db.session_factory(settings.db_url)() as session:
        [alert] = session.scalars(
            select(NotificationOutbox).where(NotificationOutbox.event_type == "drift.alert")
        ).all()
    assert alert.payload["model"] == MODEL and alert.payload["details"]["drifted"] is True
    assert "already checked" in run_drift(JobContext(settings, "test")).split(";")[0]
    experiment = registry.experiment_by_name(monitoring_experiment(MODEL))
    assert experiment is not None


def test_the_quality_job_logs_a_changed_check_and_announces_the_alert_once(
    env: dict[str, str],
) -> None:
    settings = load_settings(env)
    registry = Registry(settings.tracking_uri)
    # Forget the demo's logged checks, so the job finds something new to say.
    for run_id in quality_history(registry, MODEL)["run_id"]:
        registry.client.delete_run(run_id)
    summary = run_quality(JobContext(settings, "test"))
    assert f"{MODEL}: alert (run " in summary, summary
    [logged] = quality_history(registry, MODEL).itertuples()
    assert logged.status == "alert"
    with db.session_factory(settings.db_url)() as session:
        [alert] = session.scalars(
            select(NotificationOutbox).where(NotificationOutbox.event_type == "quality.alert")
        ).all()
    assert alert.payload["model"] == MODEL and alert.payload["page"] == "quality"
    assert "more than 0.03 worse" in alert.payload["details"]["alerts"][0]
    again = run_quality(JobContext(settings, "test"))
    assert f"{MODEL}: alert, unchanged since run {logged.run_id}" in again
    assert len(quality_history(registry, MODEL)) == 1


def test_the_rollout_job_ticks_the_demo_rollout(demo_settings: Settings, tmp_path: Path) -> None:
    # The whole data folder: the rollout lives in the panel database, its state in MLflow.
    copy = tmp_path / "demo"
    shutil.copytree(demo_settings.data_dir, copy)
    summary = run_rollout_tick(JobContext(settings_for(copy), "test"))
    model, outcome = summary.split(": ")
    assert model == "credit-default #1"
    assert outcome in {"advanced", "held", "waiting", "rolled_back"}, summary


def test_a_registered_version_shows_its_gates_on_the_models_page(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(env)
    registry = Registry(settings.tracking_uri)
    event = RegistryEvent(VERSION_CREATED, MODEL, version="3")
    assert "gates of churn-predictor v3:" in react(settings, registry, event)
    assert "kept before" in react(settings, registry, event)
    stored = stored_gates(settings.db_url, MODEL, "3")
    assert stored is not None and stored.results
    at = open_page(monkeypatch, env, "models.py", model=MODEL, version="3")
    assert not at.exception
    table = next(d for d in at.dataframe if "evidence" in d.value.columns)
    assert list(table.value["gate"]) == [g.name for g in stored.results]
    at.selectbox(key="version").set_value("2").run()
    assert any("Not evaluated yet" in c.value for c in at.caption)


def test_the_checks_job_checks_a_new_version_once_and_leaves_checked_ones(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = load_settings(env)
    version = own_version(env, MODEL, "1", tmp_path)
    summary = run_behaviour_checks(JobContext(settings, "test"))
    stored = stored_check_report(settings, MODEL, version).report
    assert stored is not None and stored.completed
    assert f"{MODEL} v{version}: checked" in summary
    # The demo's newest credit-default version carries its checks already.
    assert "credit-default v3: checked 20" in summary
    recorded = audit.AuditFilter(action="evidence_recorded", model=MODEL, actor="worker")
    (event,) = [
        e
        for e in audit.list_events(settings.db_url, recorded)
        if "checks/report.json" in e.details["artifacts"]
    ]
    assert event.version == version
    again = run_behaviour_checks(JobContext(settings, "test"))
    assert f"{MODEL} v{version}: checked {stored.created_at}" in again


def run(
    slot: datetime, outcome: str, attempt: int = 1, finished: datetime | None = None
) -> RunRecord:
    return RunRecord(1, "job", slot, attempt, "w", slot, finished, outcome, None, None)


def test_next_due_follows_the_slot_the_outcome_and_the_back_off() -> None:
    rule = RetryRule(max_attempts=2, base=timedelta(seconds=30))
    now = datetime(2026, 1, 5, 12, 3, 10)
    slot = slot_of(now, 300)
    assert slot == datetime(2026, 1, 5, 12, 0)
    assert next_due(now, None, None, rule) is None
    assert next_due(now, 300, None, rule) == now
    assert next_due(now, 300, run(slot, "ok"), rule) == datetime(2026, 1, 5, 12, 5)
    failed = run(slot, "failed", finished=datetime(2026, 1, 5, 12, 3))
    assert next_due(now, 300, failed, rule) == datetime(2026, 1, 5, 12, 3, 30)
    assert next_due(now, 300, run(slot, "failed", 2, now), rule) == datetime(2026, 1, 5, 12, 5)


def test_the_policy_schedule_names_known_jobs_only() -> None:
    every = intervals(Policy(schedule={"drift": "off", "reconcile": "1m"}), JOBS)
    assert every["drift"] is None and every["reconcile"] == 60 and every["notifications"] == 10
    with pytest.raises(ConfigError, match="unknown job"):
        intervals(Policy(schedule={"rollout": "1m"}), JOBS)


def test_the_system_page_lists_jobs_and_lets_only_admins_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_core.identity import Actor
    from mlops_core.stores import audit, deliveries
    from mlops_core.stores.db import utcnow
    from tests.apptest import ADMIN, APPROVER, app_test

    env = {"MLOPS_DATA_DIR": str(tmp_path)}
    settings = load_settings(env)
    db.upgrade(settings.db_url)
    audit.record(
        settings,
        Actor("alice", frozenset({"requester"})),
        "request",
        model="<b>m</b>",
        request_id=1,
    )
    deliveries.fan_out(settings.db_url, lambda _t: ["hook"], utcnow())

    def system(as_actor):
        at = app_test(monkeypatch, env, as_actor)
        at.switch_page("pages/system.py")
        return at.run()

    at = system(APPROVER)
    assert not at.exception
    jobs = next(d for d in at.dataframe if "next due (UTC)" in d.value.columns)
    assert list(jobs.value["job"]) == list(JOBS)
    log = next(d for d in at.dataframe if "idempotency key" in d.value.columns)
    assert list(log.value["model"]) == ["<b>m</b>"]
    assert not [b for b in at.button if b.key == "resend"]
    at = system(ADMIN)
    at.button(key="resend").click().run()
    assert not at.exception and "is queued" in at.success[0].value
    assert audit.list_events(settings.db_url)[0].action == "notification_resent"


def test_in_the_demo_a_promotion_request_reaches_a_configured_receiver_signed(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_core.governance.promotion.submit import request_promotion
    from mlops_core.identity import Actor
    from mlops_core.notifications import load_notifications
    from mlops_core.stores.outbox import EVENT_NAMES
    from mlops_core.worker.delivery import deliver_due
    from tests.receiver import receiver

    settings = load_settings(env)
    monkeypatch.setenv("DEMO_HOOK_SECRET", "d" * 40)
    with receiver() as hook:
        (settings.data_dir / "notifications.toml").write_text(
            f'[[channels]]\nname = "reviewers"\nkind = "webhook"\nurl = "{hook.url}"\n'
            'secret_env = "DEMO_HOOK_SECRET"\nevents = ["request.created"]\n'
        )
        requester = Actor("requester", frozenset({"requester"}))
        view = request_promotion(
            settings, Registry(settings.tracking_uri), requester, "credit-default", "3", "fair"
        )
        deliver_due(settings.db_url, load_notifications(settings, EVENT_NAMES), "test")
        [got] = hook.received
    assert got.signed_with("d" * 40)
    body = got.json
    assert (body["type"], body["request_id"], body["actor"]) == (
        "request.created",
        view.id,
        "requester",
    )
    assert body["link"] == f"http://127.0.0.1:8501/approvals?request={view.id}"

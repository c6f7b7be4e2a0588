"""The worker's bookkeeping in the panel database, on SQLite and PostgreSQL: the outbox
commits with its audit event, a scheduled slot is claimed once, a delivery is sent by one
worker."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mlops_core.config import Settings
from mlops_core.identity import Actor
from mlops_core.stores import audit, db, deliveries, job_runs
from mlops_core.stores.job_runs import RetryRule
from mlops_core.stores.webhook_receipts import first_receipt
from mlops_core.stores.worker_tables import NotificationDelivery, NotificationOutbox
from mlops_core.worker.status import resend
from tests.conftest import settings_for
from tests.test_db_roles import split_roles  # noqa: F401 - a fixture

KEY = "k" * 40
ALICE = Actor("alice", frozenset({"requester"}), auth_method="token")
SLOT = datetime(2026, 1, 5, 12, 0)
RULE = RetryRule(max_attempts=3, base=timedelta(seconds=10), stale_after=timedelta(minutes=5))


@pytest.fixture
def settings(panel_db_url: str, tmp_path: Path) -> Settings:
    settings = settings_for(tmp_path, MLOPS_DB_URL=panel_db_url, MLOPS_AUDIT_KEY=KEY)
    db.upgrade(settings.db_url)
    return settings


def outbox_rows(settings: Settings) -> list[NotificationOutbox]:
    with db.session_factory(settings.db_url)() as session:
        return list(session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))


def test_an_announced_action_queues_its_notification_with_the_audit_event(
    settings: Settings,
) -> None:
    event = audit.record(
        settings, ALICE, "request", model="m", version="2", request_id=7, reason="better"
    )
    audit.record(settings, ALICE, "token_created", details={"name": "laptop"})

    def work_then_fail(session) -> None:
        audit.append(session, ALICE, "approve", model="m", version="2", request_id=7)
        raise RuntimeError("the action failed after its event")

    with pytest.raises(RuntimeError):
        audit.atomic(settings, work_then_fail)
    [row] = outbox_rows(settings)
    assert (row.event_type, row.audit_event_id) == ("request.created", event.id)
    assert row.payload["idempotency_key"] == row.idempotency_key
    assert {k: row.payload[k] for k in ("model", "version", "request_id", "actor", "reason")} == {
        "model": "m",
        "version": "2",
        "request_id": 7,
        "actor": "alice",
        "reason": "better",
    }


def test_of_two_workers_claiming_a_slot_exactly_one_runs_it(settings: Settings) -> None:
    won: list[job_runs.RunRecord | None] = []
    barrier = threading.Barrier(4)

    def claim(name: str) -> None:
        barrier.wait()
        won.append(job_runs.claim(settings.db_url, "reconcile", SLOT, name, SLOT, RULE))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [run] = [r for r in won if r is not None]
    job_runs.finish(settings.db_url, run.id, SLOT, summary="done", error=None)
    later = SLOT + timedelta(minutes=1)
    assert job_runs.claim(settings.db_url, "reconcile", SLOT, "w9", later, RULE) is None
    other_slot = SLOT + timedelta(minutes=5)
    assert job_runs.claim(settings.db_url, "reconcile", other_slot, "w9", other_slot, RULE)


def test_a_failed_run_is_retried_after_a_doubling_back_off_then_given_up(
    settings: Settings,
) -> None:
    url, now = settings.db_url, SLOT
    for attempt in (1, 2, 3):
        run = job_runs.claim(url, "drift", SLOT, "w", now, RULE)
        assert run is not None and run.attempt == attempt
        job_runs.finish(url, run.id, now, summary=None, error="source down")
        delay = RULE.delay(attempt)
        assert (
            job_runs.claim(url, "drift", SLOT, "w", now + delay - timedelta(seconds=1), RULE)
            is None
        )
        now += delay
    assert job_runs.claim(url, "drift", SLOT, "w", now + timedelta(hours=1), RULE) is None
    assert [r.outcome for r in job_runs.runs_of(url, "drift")] == ["failed"] * 3


def test_a_run_whose_worker_died_is_taken_over_once_stale(settings: Settings) -> None:
    url = settings.db_url
    first = job_runs.claim(url, "drift", SLOT, "dead", SLOT, RULE)
    assert first is not None
    assert job_runs.claim(url, "drift", SLOT, "w2", SLOT + timedelta(minutes=4), RULE) is None
    second = job_runs.claim(url, "drift", SLOT, "w2", SLOT + timedelta(minutes=6), RULE)
    assert second is not None and second.attempt == 2
    assert [r.outcome for r in job_runs.runs_of(url, "drift")] == ["abandoned", "running"]


def test_fan_out_is_once_per_channel_and_a_due_delivery_is_claimed_by_one_worker(
    settings: Settings,
) -> None:
    audit.record(settings, ALICE, "request", model="m", version="2", request_id=1)
    now = datetime.now().replace(microsecond=0)
    assert deliveries.fan_out(settings.db_url, lambda _type: ["hook", "slack"], now) == 2
    assert deliveries.fan_out(settings.db_url, lambda _type: ["hook", "slack"], now) == 0
    due = now + timedelta(seconds=1)
    first = deliveries.claim_due(settings.db_url, due)
    assert sorted(d.channel for d in first) == ["hook", "slack"]
    assert deliveries.claim_due(settings.db_url, due) == []
    with db.session_factory(settings.db_url)() as session:
        assert session.scalar(select(NotificationDelivery.claimed_until).limit(1)) > due


@pytest.mark.postgres
def test_the_panel_role_may_do_everything_the_worker_does(
    split_roles: Settings,  # noqa: F811 - the fixture imported above
) -> None:
    db.migrate(split_roles)
    panel = replace(split_roles, db_migrate_url=None)
    url, now = panel.db_url, datetime.now().replace(microsecond=0)
    audit.record(panel, ALICE, "request", model="m", version="2", request_id=1)
    run = job_runs.claim(url, "notifications", SLOT, "w", now, RULE)
    assert run is not None
    deliveries.fan_out(url, lambda _type: ["hook"], now)
    [due] = deliveries.claim_due(url, now)
    deliveries.record_attempt(
        url, due.id, "w", now, ok=False, status_code=500, error="HTTP 500", retry_at=None
    )
    resend(panel, Actor("root", frozenset({"admin"})), due.id)
    job_runs.finish(url, run.id, now, summary="1 failed", error=None)
    assert first_receipt(url, "delivery-1", "model_version.created", now, timedelta(minutes=10))
    assert not first_receipt(url, "delivery-1", "model_version.created", now, timedelta(minutes=10))
    assert [d.status for d in deliveries.delivery_log(url)] == ["pending"]

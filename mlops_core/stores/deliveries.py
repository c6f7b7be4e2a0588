"""Deliveries of outbox events to channels: fan-out, claiming, attempts, the log.

Each outbox event gets one delivery per channel that wants it (unique per event and
channel, so a second fan-out adds nothing). A worker claims a due delivery with a
conditional UPDATE that only one claimer can win, sends it, and records the attempt;
a failure is retried after an exponential back-off until the channel's attempts run out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from mlops_core.stores.db import session_factory, upsert
from mlops_core.stores.worker_tables import (
    DELIVERED,
    GAVE_UP,
    PENDING,
    DeliveryAttempt,
    NotificationDelivery,
    NotificationOutbox,
)

MAX_ERROR_CHARS = 2000
# Longest a worker may spend sending one delivery before another may take it over.
CLAIM_FOR = timedelta(minutes=2)


@dataclass(frozen=True)
class DueDelivery:
    id: int
    channel: str
    attempts: int
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AttemptView:
    attempted_at: datetime
    worker: str
    ok: bool
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event_type: str
    channel: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    model: str | None
    version: str | None
    request_id: int | None
    idempotency_key: str


def fan_out(db_url: str, wants: Callable[[str], list[str]], now: datetime) -> int:
    """Give every new outbox event a delivery per channel `wants(event_type)` names."""
    with session_factory(db_url).begin() as session:
        events = session.execute(
            select(NotificationOutbox.id, NotificationOutbox.event_type)
            .where(NotificationOutbox.fanned_out_at.is_(None))
            .order_by(NotificationOutbox.id)
            .with_for_update(skip_locked=True)
        ).all()
        rows = [
            {
                "outbox_id": event_id,
                "channel": channel,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event_id, event_type in events
            for channel in wants(event_type)
        ]
        if rows:
            session.execute(
                upsert(session, NotificationDelivery).values(rows).on_conflict_do_nothing()
            )
        if events:
            session.execute(
                update(NotificationOutbox)
                .where(NotificationOutbox.id.in_([event_id for event_id, _ in events]))
                .values(fanned_out_at=now)
            )
        return len(rows)


def claim_due(db_url: str, now: datetime, limit: int = 100) -> list[DueDelivery]:
    """Due pending deliveries this worker now holds (for CLAIM_FOR), oldest first."""
    with session_factory(db_url)() as session:
        candidates = (
            session.execute(
                select(NotificationDelivery.id)
                .where(
                    NotificationDelivery.status == PENDING,
                    NotificationDelivery.next_attempt_at <= now,
                    or_(
                        NotificationDelivery.claimed_until.is_(None),
                        NotificationDelivery.claimed_until < now,
                    ),
                )
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    claimed = []
    for delivery_id in candidates:
        with session_factory(db_url).begin() as session:
            won = session.execute(
                update(NotificationDelivery)
                .where(
                    NotificationDelivery.id == delivery_id,
                    NotificationDelivery.status == PENDING,
                    or_(
                        NotificationDelivery.claimed_until.is_(None),
                        NotificationDelivery.claimed_until < now,
                    ),
                )
                .values(claimed_until=now + CLAIM_FOR)
            ).rowcount
            if not won:
                continue
            row = session.execute(
                select(NotificationDelivery, NotificationOutbox)
                .join(NotificationOutbox, NotificationOutbox.id == NotificationDelivery.outbox_id)
                .where(NotificationDelivery.id == delivery_id)
            ).one()
            delivery, event = row
            claimed.append(
                DueDelivery(
                    id=delivery.id,
                    channel=delivery.channel,
                    attempts=delivery.attempts,
                    event_type=event.event_type,
                    payload=dict(event.payload),
                )
            )
    return claimed


def record_attempt(
    db_url: str,
    delivery_id: int,
    worker: str,
    now: datetime,
    *,
    ok: bool,
    status_code: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Record one try and what follows: delivered, another try at `retry_at`, or given up
    (`retry_at` None after a failure)."""
    error = None if error is None else error[:MAX_ERROR_CHARS]
    with session_factory(db_url).begin() as session:
        session.add(
            DeliveryAttempt(
                delivery_id=delivery_id,
                attempted_at=now,
                worker=worker,
                ok=ok,
                status_code=status_code,
                error=error,
            )
        )
        values: dict[str, Any] = {
            "attempts": NotificationDelivery.attempts + 1,
            "claimed_until": None,
            "last_error": error,
        }
        if ok:
            values.update(status=DELIVERED, delivered_at=now)
        elif retry_at is None:
            values.update(status=GAVE_UP)
        else:
            values.update(next_attempt_at=retry_at)
        session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id)
            .values(values)
        )


def requeue(session: Session, delivery_id: int, now: datetime) -> bool:
    """Send again now (an admin's resend), in the caller's transaction: pending and due,
    attempts start over."""
    return bool(
        session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id)
            .values(
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                delivered_at=None,
            )
        ).rowcount
    )


def delivery_log(db_url: str, limit: int = 200) -> list[DeliveryView]:
    """The latest deliveries, newest first."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(NotificationDelivery, NotificationOutbox)
            .join(NotificationOutbox, NotificationOutbox.id == NotificationDelivery.outbox_id)
            .order_by(NotificationDelivery.id.desc())
            .limit(limit)
        ).all()
        return [
            DeliveryView(
                id=delivery.id,
                event_type=event.event_type,
                channel=delivery.channel,
                status=delivery.status,
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                next_attempt_at=delivery.next_attempt_at if delivery.status == PENDING else None,
                delivered_at=delivery.delivered_at,
                last_error=delivery.last_error,
                model=event.payload.get("model"),
                version=event.payload.get("version"),
                request_id=event.payload.get("request_id"),
                idempotency_key=event.idempotency_key,
            )
            for delivery, event in rows
        ]


def attempts_of(db_url: str, delivery_id: int) -> list[AttemptView]:
    with session_factory(db_url)() as session:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return [
            AttemptView(a.attempted_at, a.worker, a.ok, a.status_code, a.error) for a in attempts
        ]


@dataclass(frozen=True)
class QueueStats:
    """For /metrics: what waits, and what failed."""

    pending: int
    undistributed: int
    failed_attempts: int
    gave_up: int


def queue_stats(db_url: str) -> QueueStats:
    with session_factory(db_url)() as session:
        pending = session.scalar(select(func.count()).where(NotificationDelivery.status == PENDING))
        undistributed = session.scalar(
            select(func.count()).where(NotificationOutbox.fanned_out_at.is_(None))
        )
        failed = session.scalar(select(func.count()).where(DeliveryAttempt.ok.is_(False)))
        gave_up = session.scalar(select(func.count()).where(NotificationDelivery.status == GAVE_UP))
    return QueueStats(pending or 0, undistributed or 0, failed or 0, gave_up or 0)

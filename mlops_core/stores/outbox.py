"""The notification outbox: events to announce, written with the audit event itself.

`audit.append` calls `enqueue` for every event whose action people are told about, in the
same transaction: a committed action always has its notification waiting (even if the
process dies right after the commit), and a rolled-back one never had any. The worker
delivers them later (`worker.delivery`), at least once; the idempotency key in every
payload lets a receiver drop a repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from mlops_core.stores.db import AuditEvent
from mlops_core.stores.worker_tables import NotificationOutbox

# Audit action -> the notification's event type. An action missing here is not announced.
EVENT_TYPES: Mapping[str, str] = {
    "request": "request.created",
    "approve": "request.decided",
    "reject": "request.decided",
    "override": "override.used",
    "apply": "request.applied",
    "stale": "request.stale",
    "rollback": "request.rolled_back",
    "reconcile_warning": "alias.moved_outside",
    "drift_alert": "drift.alert",
    "quality_alert": "quality.alert",
    "audit_chain_broken": "audit.chain_broken",
    "rollout_started": "rollout.started",
    "rollout_advanced": "rollout.advanced",
    "rollout_completed": "rollout.completed",
    "rollout_rolled_back": "rollout.rolled_back",
    "rollout_aborted": "rollout.aborted",
    "rollout_stale": "rollout.stale",
}
# Which page a receiver's link opens for each event type.
EVENT_PAGES: Mapping[str, str] = {
    "request.created": "approvals",
    "request.decided": "approvals",
    "override.used": "approvals",
    "request.applied": "approvals",
    "request.stale": "approvals",
    "request.rolled_back": "approvals",
    "alias.moved_outside": "overview",
    "drift.alert": "drift",
    "quality.alert": "quality",
    "audit.chain_broken": "audit",
    "rollout.started": "rollouts",
    "rollout.advanced": "rollouts",
    "rollout.completed": "rollouts",
    "rollout.rolled_back": "rollouts",
    "rollout.aborted": "rollouts",
    "rollout.stale": "rollouts",
}
EVENT_NAMES = tuple(dict.fromkeys(EVENT_TYPES.values()))


def payload_of(event: AuditEvent, event_type: str, key: str) -> dict[str, Any]:
    """What every channel renders: the event, who acted, and what it concerns."""
    return {
        "idempotency_key": key,
        "type": event_type,
        "action": event.action,
        "occurred_at": event.created_at.isoformat(timespec="seconds") + "Z",
        "model": event.model_name,
        "version": event.version,
        "request_id": event.request_id,
        "actor": event.actor,
        "actor_via": event.actor_via,
        "reason": event.reason,
        "details": event.details or {},
        "audit_event_id": event.id,
        "page": EVENT_PAGES[event_type],
    }


def enqueue(session: Session, event: AuditEvent) -> NotificationOutbox | None:
    """Queue the announcement of `event` in the caller's transaction, if it is announced."""
    event_type = EVENT_TYPES.get(event.action)
    if event_type is None:
        return None
    key = uuid.uuid4().hex
    row = NotificationOutbox(
        idempotency_key=key,
        event_type=event_type,
        audit_event_id=event.id,
        payload=payload_of(event, event_type, key),
        created_at=event.created_at,
    )
    session.add(row)
    return row

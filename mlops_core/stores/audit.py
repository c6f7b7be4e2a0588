"""The audit log: append-only and hash-chained, in the panel database.

Each event stores who, when, what and why, the previous event's hash and its own hash:
sha256 over a canonical JSON of its fields plus the previous hash. Editing, inserting or
deleting an event in the middle breaks the chain at that point, which `verify` names.
On PostgreSQL a trigger (migration 0001) refuses UPDATE, DELETE and TRUNCATE outright.

Events are appended in the same transaction as the state change they record, through
`atomic`, so the log and the workflow state never disagree. On PostgreSQL appenders
queue on an advisory lock. Whatever the engine, the `prev_hash` column is unique, so two
writers appending after the same event can never both commit; `atomic` runs the loser's
whole unit of work again on top of the new head.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core.csv_safety import safe_row
from mlops_core.identity import Actor
from mlops_core.stores.db import AuditEvent, session_factory, utcnow

GENESIS_HASH = "0" * 64
CHAIN_ATTEMPTS = 8
# Any fixed number: the PostgreSQL advisory lock that serialises appends.
CHAIN_LOCK_KEY = 0x6D6C6F7073
CSV_COLUMNS = [
    "id",
    "created_at",
    "actor",
    "actor_via",
    "action",
    "model_name",
    "version",
    "request_id",
    "reason",
    "details",
    "prev_hash",
    "hash",
]
# The panel itself acting (reconcile), as opposed to a person or a pipeline.
SYSTEM = Actor(username="system", auth_method="panel")
T = TypeVar("T")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    created_at: datetime
    actor: str
    actor_via: str
    action: str
    model_name: str | None
    version: str | None
    request_id: int | None
    reason: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    """Which events to list; None means any. Dates are inclusive, in UTC."""

    model: str | None = None
    actor: str | None = None
    action: str | None = None
    request_id: int | None = None
    since: date | None = None
    until: date | None = None
    limit: int | None = None


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS_HASH

    @property
    def summary(self) -> str:
        if self.ok:
            return f"Audit chain intact: {self.checked} events, head hash {self.head_hash}."
        return f"Audit chain broken at event #{self.first_broken_id}: {self.reason}"


@dataclass(frozen=True)
class _Fields:
    """Exactly what the hash covers."""

    created_at: datetime
    actor: str
    actor_via: str
    action: str
    model_name: str | None
    version: str | None
    request_id: int | None
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)


def json_safe(value: Any) -> Any:
    """Plain JSON data: NaN and infinities become None (PostgreSQL's json rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _timestamp(value: datetime) -> str:
    # Naive UTC with microseconds: the form both SQLite and PostgreSQL give back unchanged.
    return value.isoformat(timespec="microseconds")


def compute_hash(fields: _Fields, prev_hash: str) -> str:
    payload = {
        "created_at": _timestamp(fields.created_at),
        "actor": fields.actor,
        "actor_via": fields.actor_via,
        "action": fields.action,
        "model_name": fields.model_name,
        "version": fields.version,
        "request_id": fields.request_id,
        "reason": fields.reason,
        "details": fields.details,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _head_hash(session: Session) -> str:
    if session.get_bind().dialect.name == "postgresql":
        # Writers queue here until the previous appender commits, instead of colliding on
        # the unique prev_hash and starting over; the lock ends with the transaction.
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    head = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return head or GENESIS_HASH


def append(
    session: Session,
    actor: Actor,
    action: str,
    *,
    model: str | None = None,
    version: str | None = None,
    request_id: int | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event after the current head; it commits with the caller's transaction."""
    fields = _Fields(
        created_at=utcnow(),
        actor=actor.username,
        actor_via=actor.auth_method,
        action=action,
        model_name=model,
        version=version,
        request_id=request_id,
        reason=reason,
        details=json_safe(details or {}),
    )
    prev_hash = _head_hash(session)
    event = AuditEvent(
        created_at=fields.created_at,
        actor=fields.actor,
        actor_via=fields.actor_via,
        action=fields.action,
        model_name=fields.model_name,
        version=fields.version,
        request_id=fields.request_id,
        reason=fields.reason,
        details=fields.details,
        prev_hash=prev_hash,
        hash=compute_hash(fields, prev_hash),
    )
    session.add(event)
    session.flush()
    return event


def _is_chain_conflict(exc: IntegrityError) -> bool:
    return "prev_hash" in str(exc.orig) or "audit_event_prev_hash" in str(exc.orig)


def atomic(db_url: str, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction; run it again when another writer took the chain head.

    `work` must touch only the panel database: it may run more than once.
    """
    sessions = session_factory(db_url)
    for attempt in range(CHAIN_ATTEMPTS):
        try:
            with sessions.begin() as session:
                return work(session)
        except IntegrityError as exc:
            if not _is_chain_conflict(exc) or attempt == CHAIN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def record(
    db_url: str,
    actor: Actor,
    action: str,
    **event: Any,
) -> AuditRecord:
    """Append one event on its own (no other state changes with it)."""
    return atomic(db_url, lambda session: to_record(append(session, actor, action, **event)))


def to_record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=event.id,
        created_at=event.created_at,
        actor=event.actor,
        actor_via=event.actor_via,
        action=event.action,
        model_name=event.model_name,
        version=event.version,
        request_id=event.request_id,
        reason=event.reason,
        details=dict(event.details or {}),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def _filtered(query: Select, filters: AuditFilter) -> Select:
    if filters.model:
        query = query.where(AuditEvent.model_name == filters.model)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.request_id is not None:
        query = query.where(AuditEvent.request_id == filters.request_id)
    if filters.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.since, time.min))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min)
        query = query.where(AuditEvent.created_at < end)
    return query


def list_events(db_url: str, filters: AuditFilter | None = None) -> list[AuditRecord]:
    """Events matching the filters, newest first."""
    filters = filters or AuditFilter()
    query = _filtered(select(AuditEvent), filters).order_by(AuditEvent.id.desc())
    if filters.limit:
        query = query.limit(filters.limit)
    with session_factory(db_url)() as session:
        return [to_record(event) for event in session.scalars(query)]


def distinct_values(db_url: str) -> dict[str, list[str]]:
    """The models, actors and actions present, for filter pickers."""
    columns = {
        "model": AuditEvent.model_name,
        "actor": AuditEvent.actor,
        "action": AuditEvent.action,
    }
    with session_factory(db_url)() as session:
        return {
            name: sorted(v for v in session.scalars(select(column).distinct()) if v)
            for name, column in columns.items()
        }


def _chain(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not events:
            return
        yield from events
        last_id = events[-1].id
        session.expunge_all()


def _recomputed(event: AuditEvent) -> str:
    fields = _Fields(
        created_at=event.created_at,
        actor=event.actor,
        actor_via=event.actor_via,
        action=event.action,
        model_name=event.model_name,
        version=event.version,
        request_id=event.request_id,
        reason=event.reason,
        details=event.details or {},
    )
    return compute_hash(fields, event.prev_hash)


def verify_session(session: Session) -> ChainStatus:
    expected_prev = GENESIS_HASH
    checked = 0
    for event in _chain(session):
        if event.prev_hash != expected_prev:
            return ChainStatus(
                False,
                checked,
                event.id,
                "its previous-hash does not match the event before it "
                "(an event before it was deleted, inserted or edited).",
            )
        if _recomputed(event) != event.hash:
            return ChainStatus(
                False, checked, event.id, "its content does not match its hash (it was edited)."
            )
        expected_prev = event.hash
        checked += 1
    return ChainStatus(True, checked, head_hash=expected_prev)


def verify(db_url: str) -> ChainStatus:
    """Walk the whole chain from the first event; name the first event that breaks it."""
    with session_factory(db_url)() as session:
        return verify_session(session)


def export_csv(db_url: str, filters: AuditFilter | None = None) -> str:
    """The events (oldest first) as CSV, with their hashes so a copy can be re-verified.

    Reasons, names and details are typed by people, so formula-like cells are quoted
    (`csv_safety`, reversible by dropping one leading quote).
    """
    records = sorted(list_events(db_url, filters), key=lambda r: r.id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            safe_row(
                [
                    r.id,
                    _timestamp(r.created_at),
                    r.actor,
                    r.actor_via,
                    r.action,
                    r.model_name or "",
                    r.version or "",
                    "" if r.request_id is None else r.request_id,
                    r.reason or "",
                    json.dumps(r.details, sort_keys=True, ensure_ascii=False),
                    r.prev_hash,
                    r.hash,
                ]
            )
        )
    return buffer.getvalue()

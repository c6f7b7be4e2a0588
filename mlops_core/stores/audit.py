"""The audit log: append-only and hash-chained, in the panel database.

Each event stores who, when, what and why, the previous event's hash and its own hash:
HMAC-SHA256, keyed with the audit key (audit_key.py), over a canonical JSON of its fields
plus the previous hash. Editing, inserting or deleting an event breaks the chain at that
point, which `verify` names; without the key nobody can compute a hash that verifies, so
nobody who can merely write the database can append or rewrite events either.
On PostgreSQL a trigger (migration 0001) refuses UPDATE, DELETE and TRUNCATE outright.

After each commit the head is also anchored outside the database (audit_anchors.py):
`verify` reports a chain that lacks an anchored event (truncated) or has another hash at
an anchored id (rewritten), which the hashes alone could not show.

Events written by versions before the key have a plain sha256 hash ("legacy"). They are
accepted only as the chain's beginning, before the first keyed or anchored event: once a
keyed event follows, its signed previous hash binds them, and an unkeyed event after a
keyed one is a forgery.

Events are appended in the same transaction as the state change they record, through
`atomic`, so the log and the workflow state never disagree; an event people are told
about queues its notification in that transaction too (`outbox.enqueue`). On PostgreSQL appenders
queue on an advisory lock. Whatever the engine, the `prev_hash` column is unique, so two
writers appending after the same event can never both commit; `atomic` runs the loser's
whole unit of work again on top of the new head.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.csv_safety import safe_row
from mlops_core.identity import Actor
from mlops_core.redaction import redact
from mlops_core.stores.audit_anchors import Anchor, read_anchors, write_anchor
from mlops_core.stores.audit_key import audit_key, canonical, is_signed, sign
from mlops_core.stores.db import AuditEvent, session_factory, utcnow
from mlops_core.stores.outbox import enqueue

GENESIS_HASH = "0" * 64
CHAIN_ATTEMPTS = 8
KEYED, LEGACY = "hmac-sha256", "sha256"
# In the session's own info dict: the audit key `atomic` hands `append`, and the last
# event `append` added, which `atomic` anchors once the transaction has committed.
_KEY_INFO = "mlops_audit_key"
_HEAD_INFO = "mlops_audit_head"
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
log = logging.getLogger(__name__)


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
    head_id: int | None = None
    # Events at the chain's beginning with the plain sha256 of versions before the key.
    legacy: int = 0
    # The highest event id anchored outside the database, if any.
    anchored_id: int | None = None

    @property
    def summary(self) -> str:
        """One line: intact and what that rests on, or the first broken event and why."""
        if not self.ok:
            where = f" at event #{self.first_broken_id}" if self.first_broken_id else ""
            return f"Audit chain broken{where}: {self.reason}"
        if self.head_id is None:
            return "Audit chain intact: no events yet."
        return (
            f"Audit chain intact: {self.checked} event{'s' * (self.checked != 1)}"
            f"{self._legacy_note()}, head "
            f"#{self.head_id} hash {self.head_hash}{self._anchor_note()}."
        )

    def _legacy_note(self) -> str:
        if not self.legacy:
            return ""
        if self.legacy == self.checked:
            return (
                f" (all {self.legacy} unkeyed legacy events from before keyed hashing: "
                "until a keyed event follows them, a rewrite by someone able to write the "
                "database would not show)"
            )
        return (
            f" (the first {self.legacy} are unkeyed legacy events, bound by the keyed "
            "ones after them)"
        )

    def _anchor_note(self) -> str:
        if self.anchored_id == self.head_id:
            return ", anchored outside the database"
        if self.anchored_id is None:
            return "; not anchored yet, so deleting the last events would not show"
        return f"; anchored up to #{self.anchored_id}: deleting the events after it would not show"


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


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


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


def _payload(fields: _Fields, prev_hash: str) -> dict[str, Any]:
    return {
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


def _legacy_hash(fields: _Fields, prev_hash: str) -> str:
    """The unkeyed hash of versions before the audit key: anyone can compute it."""
    return hashlib.sha256(canonical(_payload(fields, prev_hash))).hexdigest()


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
    """Add an event after the current head; it commits with the caller's transaction.

    Only inside `atomic`, which hands the session the audit key.
    """
    key = session.info.get(_KEY_INFO)
    if key is None:
        raise RuntimeError("audit.append must run inside audit.atomic (it holds the audit key)")
    fields = _Fields(
        created_at=utcnow(),
        actor=actor.username,
        actor_via=actor.auth_method,
        action=action,
        model_name=model,
        version=version,
        request_id=request_id,
        # Errors quoted in an event (a failed apply, say) may carry a URL's credentials.
        reason=None if reason is None else redact(reason),
        details=json_safe(_redacted(details or {})),
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
        hash=sign(key, _payload(fields, prev_hash)),
    )
    session.add(event)
    session.flush()
    # Announced in this same transaction: committed together, or not at all.
    enqueue(session, event)
    session.info[_HEAD_INFO] = Anchor(event.id, event.hash)
    return event


def _is_chain_conflict(exc: IntegrityError) -> bool:
    return "prev_hash" in str(exc.orig) or "audit_event_prev_hash" in str(exc.orig)


def atomic(settings: Settings, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction; run it again when another writer took the chain head.

    `work` must touch only the panel database: it may run more than once.
    """
    key = audit_key(settings)
    sessions = session_factory(settings.db_url)
    for attempt in range(CHAIN_ATTEMPTS):
        try:
            with sessions.begin() as session:
                session.info[_KEY_INFO] = key
                result = work(session)
                head = session.info.get(_HEAD_INFO)
        except IntegrityError as exc:
            if not _is_chain_conflict(exc) or attempt == CHAIN_ATTEMPTS - 1:
                raise
            continue
        if head is not None:
            _anchor(settings, key, head)
        return result
    raise AssertionError("unreachable")


def _anchor(settings: Settings, key: bytes, head: Anchor) -> None:
    """Anchor a committed head. The action it records has happened, so a failed write is
    logged, not raised: it only leaves these events unanchored (see audit_anchors.py)."""
    try:
        write_anchor(settings.audit_anchor_file, key, head)
    except OSError as exc:
        log.warning("Could not anchor audit event #%s in %s: %s", head.id, exc.filename, exc)


def record(
    settings: Settings,
    actor: Actor,
    action: str,
    **event: Any,
) -> AuditRecord:
    """Append one event on its own (no other state changes with it)."""
    return atomic(settings, lambda session: to_record(append(session, actor, action, **event)))


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


def _scheme(event: AuditEvent, key: bytes) -> str | None:
    """KEYED or LEGACY when the event's hash matches its content that way, else None."""
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
    if is_signed(key, _payload(fields, event.prev_hash), event.hash):
        return KEYED
    if _legacy_hash(fields, event.prev_hash) == event.hash:
        return LEGACY
    return None


@dataclass(frozen=True)
class _Anchored:
    """The anchors by id, to look up as the walk goes."""

    ids: list[int]
    hashes: dict[int, set[str]]

    @classmethod
    def of(cls, anchors: tuple[Anchor, ...]) -> _Anchored:
        hashes: dict[int, set[str]] = {}
        for anchor in anchors:
            hashes.setdefault(anchor.id, set()).add(anchor.hash)
        return cls(sorted(hashes), hashes)

    def keyed_from(self) -> int | None:
        """The first anchored id: keyed hashing had begun by then."""
        return self.ids[0] if self.ids else None

    def missing_after(self, last_id: int, before: int | None = None) -> int | None:
        """The first anchored id after `last_id` (and before `before`): one the chain lacks."""
        index = bisect_right(self.ids, last_id)
        if index < len(self.ids) and (before is None or self.ids[index] < before):
            return self.ids[index]
        return None

    def differs(self, event: AuditEvent) -> bool:
        return bool(self.hashes.get(event.id, {event.hash}) - {event.hash})


def _problem(event: AuditEvent, scheme: str | None, expected_prev: str, keyed: bool) -> str | None:
    """Why `event` breaks the chain, if it does; `keyed`: keyed hashing had begun."""
    if event.prev_hash != expected_prev:
        return (
            "its previous-hash does not match the event before it "
            "(an event before it was deleted, inserted or edited)."
        )
    if scheme is None:
        return (
            "its content does not match its hash (it was edited, or the audit key is not "
            "the one it was written with)."
        )
    if scheme == LEGACY and keyed:
        return (
            "it has an unkeyed sha256 hash after keyed hashing began (it was forged or "
            "rewritten by someone without the audit key)."
        )
    return None


MISSING = "it was anchored outside the database but is missing from the chain (deleted)."
REWRITTEN = (
    "its hash differs from the one anchored outside the database (it was rewritten and "
    "the hashes after it recomputed)."
)


def _walk(events: Iterator[AuditEvent], key: bytes, anchored: _Anchored) -> ChainStatus:
    expected_prev, checked, legacy, keyed, last_id = GENESIS_HASH, 0, 0, False, 0
    keyed_from = anchored.keyed_from()
    for event in events:
        scheme = _scheme(event, key)
        keyed = keyed or (keyed_from is not None and event.id >= keyed_from)
        problem = _problem(event, scheme, expected_prev, keyed)
        if problem:
            return ChainStatus(False, checked, event.id, problem)
        missing = anchored.missing_after(last_id, before=event.id)
        if missing is not None:
            return ChainStatus(False, checked, missing, MISSING)
        if anchored.differs(event):
            return ChainStatus(False, checked, event.id, REWRITTEN)
        keyed = keyed or scheme == KEYED
        legacy += scheme == LEGACY
        expected_prev, last_id = event.hash, event.id
        checked += 1
    truncated = anchored.missing_after(last_id)
    if truncated is not None:
        end = f"ends at #{last_id}" if checked else "is empty"
        return ChainStatus(
            False,
            checked,
            truncated,
            f"it was anchored outside the database but the chain {end} (its last events "
            "were deleted).",
        )
    return ChainStatus(
        True,
        checked,
        head_hash=expected_prev,
        head_id=last_id or None,
        legacy=legacy,
        anchored_id=anchored.ids[-1] if anchored.ids else None,
    )


def verify(settings: Settings) -> ChainStatus:
    """Walk the whole chain from the first event against its anchors; name the first
    event that breaks it."""
    key = audit_key(settings)
    anchors = read_anchors(settings.audit_anchor_file, key)
    if anchors.problem:
        return ChainStatus(False, 0, reason=anchors.problem)
    with session_factory(settings.db_url)() as session:
        return _walk(_chain(session), key, _Anchored.of(anchors.entries))


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

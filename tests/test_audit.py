"""The audit log: keyed hash chain, tamper detection, concurrency, export; SQLite and
PostgreSQL. Forgeries are made the way an attacker who can write the database but lacks
the audit key would make them: with the published hashing format and plain SQL."""

import csv
import hashlib
import hmac
import io
import json
import stat
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from mlops_core.config import Settings
from mlops_core.errors import ConfigError
from mlops_core.identity import Actor
from mlops_core.stores import audit, db
from mlops_core.stores.audit_anchors import Anchor, write_anchor
from mlops_core.stores.audit_key import audit_key, canonical
from tests.conftest import settings_for

ALICE = Actor("alice", frozenset({"requester"}), auth_method="local")
CI = Actor("ci-bot", frozenset({"requester"}), auth_method="cli")
AUDIT_KEY = "test-audit-key-0123456789-abcdefghijklmnop"


def chain_settings(folder: Path, url: str, key: str = AUDIT_KEY) -> Settings:
    return settings_for(folder, MLOPS_DB_URL=url, MLOPS_AUDIT_KEY=key)


@pytest.fixture
def chain(panel_db_url: str, tmp_path: Path) -> Settings:
    """A keyed chain on both engines."""
    return chain_settings(tmp_path, panel_db_url)


@pytest.fixture
def sqlite_chain(tmp_path: Path) -> Settings:
    return chain_settings(tmp_path, f"sqlite:///{tmp_path / 'panel.db'}")


@pytest.fixture
def pg_chain(pg_url: str, tmp_path: Path) -> Settings:
    return chain_settings(tmp_path, pg_url)


def _seed(settings: Settings, n: int = 4) -> list[audit.AuditRecord]:
    db.upgrade(settings.db_url)
    return [
        audit.record(
            settings,
            ALICE if i % 2 else CI,
            "request" if i % 2 else "approve",
            model="churn-predictor",
            version=str(i),
            request_id=i,
            reason=f"reason {i} — ünïcode",
            details={"alias": "champion", "score": 0.1 * i, "nan": float("nan"), "list": (1, 2)},
        )
        for i in range(1, n + 1)
    ]


def _sha256(payload: dict) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


def _forge(settings: Settings, hasher=_sha256) -> int:
    """Insert an event after the head with plain SQL, hashed with `hasher`."""
    with db.get_engine(settings.db_url).begin() as connection:
        head = connection.execute(
            select(db.AuditEvent.hash).order_by(db.AuditEvent.id.desc()).limit(1)
        ).scalar()
        prev_hash = head or audit.GENESIS_HASH
        fields = {
            "created_at": db.utcnow().replace(microsecond=123456),
            "actor": "mallory",
            "actor_via": "local",
            "action": "approve",
            "model_name": "churn-predictor",
            "version": "2",
            "request_id": None,
            "reason": "looks fine",
            "details": {},
        }
        payload = {
            **fields,
            "created_at": fields["created_at"].isoformat(timespec="microseconds"),
            "prev_hash": prev_hash,
        }
        return connection.execute(
            db.AuditEvent.__table__.insert()
            .values(**fields, prev_hash=prev_hash, hash=hasher(payload))
            .returning(db.AuditEvent.id)
        ).scalar_one()


def _rehash_from(
    settings: Settings, first_id: int, last_id: int | None = None, hasher=_sha256
) -> None:
    """Rewrite event `first_id` and recompute the hashes from there to `last_id` or the
    end, as someone able to write the SQLite file would."""
    with db.get_engine(settings.db_url).begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET reason = 'rewritten' WHERE id = :id"), {"id": first_id}
        )
        rows = connection.execute(
            select(db.AuditEvent.__table__).order_by(db.AuditEvent.id)
        ).mappings()
        prev_hash = audit.GENESIS_HASH
        for row in list(rows):
            if first_id <= row["id"] <= (last_id or row["id"]):
                payload = {
                    name: row[name]
                    for name in (
                        "actor",
                        "actor_via",
                        "action",
                        "model_name",
                        "version",
                        "request_id",
                        "reason",
                        "details",
                    )
                }
                payload["created_at"] = row["created_at"].isoformat(timespec="microseconds")
                payload["prev_hash"] = prev_hash
                connection.execute(
                    text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :id"),
                    {"p": prev_hash, "h": hasher(payload), "id": row["id"]},
                )
                prev_hash = hasher(payload)
            else:
                prev_hash = row["hash"]


def test_chain_links_each_event_to_the_one_before(chain: Settings) -> None:
    events = _seed(chain)
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    # Read back from the database, the hashes still match their content on both engines.
    status = audit.verify(chain)
    assert status.ok and status.checked == 4 and status.head_hash == events[-1].hash
    stored = audit.list_events(chain.db_url)[0]
    assert stored.details == {"alias": "champion", "score": 0.4, "nan": None, "list": [1, 2]}


def test_hashes_are_keyed_with_the_audit_key(chain: Settings, tmp_path: Path) -> None:
    (event,) = _seed(chain, n=1)
    (stored,) = audit.list_events(chain.db_url)
    payload = {
        "created_at": stored.created_at.isoformat(timespec="microseconds"),
        "actor": stored.actor,
        "actor_via": stored.actor_via,
        "action": stored.action,
        "model_name": stored.model_name,
        "version": stored.version,
        "request_id": stored.request_id,
        "reason": stored.reason,
        "details": stored.details,
        "prev_hash": audit.GENESIS_HASH,
    }
    keyed = hmac.new(AUDIT_KEY.encode(), canonical(payload), hashlib.sha256).hexdigest()
    assert event.hash == keyed != _sha256(payload)
    # The same chain read with another key does not verify: the key is what vouches for it.
    other = chain_settings(tmp_path / "other", chain.db_url, key="another-key-" + "x" * 32)
    status = audit.verify(other)
    assert not status.ok and status.first_broken_id == event.id and "audit key" in status.reason


def test_an_event_forged_with_a_plain_sha256_hash_is_caught(chain: Settings) -> None:
    _seed(chain, n=2)
    forged = _forge(chain)
    status = audit.verify(chain)
    assert not status.ok and status.first_broken_id == forged
    assert "without the audit key" in status.reason


def test_an_event_forged_with_a_guessed_key_is_caught(chain: Settings) -> None:
    _seed(chain, n=2)
    guessed = b"changeme"
    forged = _forge(chain, lambda p: hmac.new(guessed, canonical(p), hashlib.sha256).hexdigest())
    status = audit.verify(chain)
    assert not status.ok and status.first_broken_id == forged and "edited" in status.reason


def test_a_rewritten_and_recomputed_tail_is_caught(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain)
    _rehash_from(sqlite_chain, events[2].id)
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[2].id
    assert "without the audit key" in status.reason


def test_legacy_events_are_accepted_only_as_the_chains_beginning(sqlite_chain: Settings) -> None:
    # A log written by a version before the key: plain sha256 hashes.
    db.upgrade(sqlite_chain.db_url)
    legacy = [_forge(sqlite_chain) for _ in range(3)]
    status = audit.verify(sqlite_chain)
    assert status.ok and status.legacy == 3 and "all 3 unkeyed legacy events" in status.summary
    # The first keyed event signs the legacy head's hash: from then on they are bound.
    keyed = audit.record(sqlite_chain, ALICE, "request")
    status = audit.verify(sqlite_chain)
    assert status.ok and status.legacy == 3 and "the first 3 are unkeyed legacy" in status.summary
    assert keyed.prev_hash == audit.list_events(sqlite_chain.db_url)[1].hash
    # Rewriting a legacy event, and recomputing the legacy hashes after it, breaks the link
    # to the keyed event, which cannot be re-signed without the key.
    _rehash_from(sqlite_chain, legacy[1], last_id=legacy[-1])
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == keyed.id
    assert "previous-hash" in status.reason


def _tamper(settings: Settings, statement: str, **params: object) -> None:
    """Run SQL as the database's owner would, with the append-only trigger off."""
    with db.get_engine(settings.db_url).begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        connection.execute(text(statement), params)
        if postgres:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


def test_each_commit_anchors_its_head_outside_the_database(chain: Settings) -> None:
    events = _seed(chain, n=3)
    lines = chain.audit_anchor_file.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [e.id for e in events]
    status = audit.verify(chain)
    assert status.ok and status.anchored_id == status.head_id == events[-1].id
    assert "anchored outside the database" in status.summary


def test_a_truncated_chain_is_caught(chain: Settings) -> None:
    events = _seed(chain)
    _tamper(chain, "DELETE FROM audit_event WHERE id >= :id", id=events[2].id)
    status = audit.verify(chain)
    assert not status.ok and status.first_broken_id == events[2].id
    assert f"the chain ends at #{events[1].id}" in status.reason and "deleted" in status.reason
    # Deleting everything is no way out either.
    _tamper(chain, "DELETE FROM audit_event")
    status = audit.verify(chain)
    assert status.first_broken_id == events[0].id and "the chain is empty" in status.reason


def test_a_truncated_chain_stays_caught_after_the_next_append(sqlite_chain: Settings) -> None:
    # SQLite hands the deleted ids out again; the new events cannot match the anchors.
    events = _seed(sqlite_chain)
    _tamper(sqlite_chain, "DELETE FROM audit_event WHERE id >= :id", id=events[2].id)
    audit.record(sqlite_chain, ALICE, "request")
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[2].id
    assert "differs from the one anchored" in status.reason


def test_a_tail_rewritten_with_the_stolen_key_is_caught_by_the_anchors(
    sqlite_chain: Settings,
) -> None:
    events = _seed(sqlite_chain)
    key = AUDIT_KEY.encode()
    _rehash_from(
        sqlite_chain,
        events[1].id,
        hasher=lambda p: hmac.new(key, canonical(p), hashlib.sha256).hexdigest(),
    )
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[1].id
    assert "differs from the one anchored" in status.reason


def test_a_chain_recomputed_as_legacy_sha256_is_caught(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain)
    _rehash_from(sqlite_chain, events[0].id)
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[0].id
    assert "without the audit key" in status.reason


@pytest.mark.parametrize(
    "line",
    [
        {"id": 99, "hash": "a" * 64, "mac": "0" * 64},
        {"id": 1, "hash": "a" * 64},
        "[1, 2]",
    ],
)
def test_a_forged_anchor_line_is_caught(sqlite_chain: Settings, line: object) -> None:
    _seed(sqlite_chain, n=2)
    with sqlite_chain.audit_anchor_file.open("a") as file:
        file.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id is None
    assert "line 3 of the anchor file" in status.summary and "not signed" in status.summary


def test_an_anchor_signed_with_another_key_is_caught(sqlite_chain: Settings, tmp_path) -> None:
    _seed(sqlite_chain, n=1)
    other = chain_settings(tmp_path / "other", sqlite_chain.db_url, key="other-key-" + "y" * 32)
    write_anchor(sqlite_chain.audit_anchor_file, audit_key(other), Anchor(1, "b" * 64))
    assert "line 2 of the anchor file" in audit.verify(sqlite_chain).summary


def test_lost_and_torn_anchor_writes_never_fail_a_sound_chain(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain)
    anchors = sqlite_chain.audit_anchor_file
    # The last two appenders died after their commit: one before writing, one halfway.
    first_two = anchors.read_text().splitlines()[:2]
    torn = anchors.read_text().splitlines()[3][:30]
    anchors.write_text("\n".join(first_two) + "\n" + torn)
    status = audit.verify(sqlite_chain)
    assert status.ok and status.anchored_id == events[1].id and status.head_id == events[3].id
    assert "anchored up to" in status.summary
    # The next appender ends the torn line first; the chain is anchored to its head again.
    latest = audit.record(sqlite_chain, ALICE, "request")
    status = audit.verify(sqlite_chain)
    assert status.ok and status.anchored_id == status.head_id == latest.id


def test_anchors_written_out_of_order_keep_the_highest(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain, n=3)
    # Two processes appending at once may write their anchors in either order.
    lines = sqlite_chain.audit_anchor_file.read_text().splitlines()
    sqlite_chain.audit_anchor_file.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    status = audit.verify(sqlite_chain)
    assert status.ok and status.anchored_id == events[2].id


def test_an_anchor_that_cannot_be_written_does_not_undo_the_action(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, MLOPS_AUDIT_ANCHOR_FILE=str(tmp_path))  # a folder
    db.upgrade(settings.db_url)
    event = audit.record(settings, ALICE, "request")
    assert "Could not anchor audit event" in caplog.text
    status = audit.verify(replace(settings, audit_anchor_file=tmp_path / "none.jsonl"))
    assert status.ok and status.head_id == event.id and "not anchored yet" in status.summary


def test_zero_configuration_makes_a_private_key_file_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert not settings.audit_key_file.exists()
    keys = set()

    def first_use() -> None:
        keys.add(audit_key(settings))

    # Several processes starting at once agree on one key.
    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 1 and len(next(iter(keys))) >= 32
    assert stat.S_IMODE(settings.audit_key_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["audit.key"]
    db.upgrade(settings.db_url)
    audit.record(settings, ALICE, "request")
    # Read again, not made again: the chain written with it still verifies.
    assert audit.verify(settings_for(tmp_path)).ok


def test_a_key_file_without_a_real_key_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.audit_key_file.write_text("short\n")
    with pytest.raises(ConfigError, match="MLOPS_AUDIT_KEY_FILE: .* at least 32 characters"):
        audit_key(settings)


def test_filters_and_csv_export(chain: Settings) -> None:
    url = chain.db_url
    events = _seed(chain)
    only_ci = audit.list_events(url, audit.AuditFilter(actor="ci-bot"))
    assert [e.id for e in only_ci] == [events[3].id, events[1].id]
    day = events[0].created_at.date()
    assert len(audit.list_events(url, audit.AuditFilter(since=day, until=day))) == 4
    tomorrow = day + timedelta(days=1)
    assert audit.list_events(url, audit.AuditFilter(since=tomorrow)) == []
    rows = list(csv.DictReader(io.StringIO(audit.export_csv(url))))
    assert [int(r["id"]) for r in rows] == [e.id for e in events]
    assert rows[0]["reason"] == "reason 1 — ünïcode" and rows[-1]["hash"] == events[-1].hash
    assert audit.distinct_values(url)["action"] == ["approve", "request"]


def test_csv_export_quotes_cells_a_spreadsheet_would_run(sqlite_chain: Settings) -> None:
    db.upgrade(sqlite_chain.db_url)
    event = audit.record(
        sqlite_chain,
        ALICE,
        "request",
        model='=HYPERLINK("http://evil.example","x")',
        version="-2+3",
        reason="=cmd|' /C calc'!A0",
    )
    (row,) = csv.DictReader(io.StringIO(audit.export_csv(sqlite_chain.db_url)))
    assert row["reason"] == "'=cmd|' /C calc'!A0"
    assert row["model_name"] == "'" + event.model_name and row["version"] == "'-2+3"
    assert row["id"] == str(event.id) and row["hash"] == event.hash


def test_an_edited_event_is_named_as_the_first_broken_one(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain)
    with db.get_engine(sqlite_chain.db_url).begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET reason = 'nothing to see' WHERE id = :id"),
            {"id": events[1].id},
        )
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[1].id
    assert "edited" in status.reason and status.checked == 1


def test_a_deleted_event_breaks_the_chain_at_the_next_one(sqlite_chain: Settings) -> None:
    events = _seed(sqlite_chain)
    with db.get_engine(sqlite_chain.db_url).begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[1].id})
    status = audit.verify(sqlite_chain)
    assert not status.ok and status.first_broken_id == events[2].id
    assert "previous-hash" in status.reason


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET reason = 'rewritten'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ],
)
def test_postgresql_refuses_to_rewrite_history(pg_chain: Settings, statement: str) -> None:
    _seed(pg_chain, n=2)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        db.get_engine(pg_chain.db_url).begin() as connection,
    ):
        connection.execute(text(statement))
    assert audit.verify(pg_chain).checked == 2


@pytest.mark.postgres
def test_postgresql_tampering_behind_the_trigger_is_still_detected(pg_chain: Settings) -> None:
    events = _seed(pg_chain, n=3)
    # A superuser can switch the trigger off; the chain still gives the edit away.
    with db.get_engine(pg_chain.db_url).begin() as connection:
        connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        connection.execute(
            text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": events[2].id}
        )
    assert audit.verify(pg_chain).first_broken_id == events[2].id


@pytest.mark.postgres
def test_concurrent_appends_keep_one_linear_chain(pg_chain: Settings) -> None:
    db.upgrade(pg_chain.db_url)
    writers, per_writer = 8, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for i in range(per_writer):
                audit.record(pg_chain, ALICE, "request", model=f"m{n}", version=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status = audit.verify(pg_chain)
    assert status.ok and status.checked == writers * per_writer
    # Anchors written after each commit, in whatever order: the highest is the head.
    assert status.anchored_id == status.head_id

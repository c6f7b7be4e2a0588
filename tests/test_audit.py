"""The audit log: hash chain, tamper detection, concurrency, export; SQLite and PostgreSQL."""

import csv
import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mlops_core.identity import Actor
from mlops_core.stores import audit, db

ALICE = Actor("alice", frozenset({"requester"}), auth_method="local")
CI = Actor("ci-bot", frozenset({"requester"}), auth_method="cli")


def _seed(url: str, n: int = 4) -> list[audit.AuditRecord]:
    db.upgrade(url)
    return [
        audit.record(
            url,
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


def test_chain_links_each_event_to_the_one_before(panel_db_url: str) -> None:
    events = _seed(panel_db_url)
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    # Read back from the database, the hashes still match their content on both engines.
    status = audit.verify(panel_db_url)
    assert status.ok and status.checked == 4 and status.head_hash == events[-1].hash
    stored = audit.list_events(panel_db_url)[0]
    assert stored.details == {"alias": "champion", "score": 0.4, "nan": None, "list": [1, 2]}


def test_filters_and_csv_export(panel_db_url: str) -> None:
    events = _seed(panel_db_url)
    only_ci = audit.list_events(panel_db_url, audit.AuditFilter(actor="ci-bot"))
    assert [e.id for e in only_ci] == [events[3].id, events[1].id]
    day = events[0].created_at.date()
    assert len(audit.list_events(panel_db_url, audit.AuditFilter(since=day, until=day))) == 4
    tomorrow = day + timedelta(days=1)
    assert audit.list_events(panel_db_url, audit.AuditFilter(since=tomorrow)) == []
    rows = list(csv.DictReader(io.StringIO(audit.export_csv(panel_db_url))))
    assert [int(r["id"]) for r in rows] == [e.id for e in events]
    assert rows[0]["reason"] == "reason 1 — ünïcode" and rows[-1]["hash"] == events[-1].hash
    assert audit.distinct_values(panel_db_url)["action"] == ["approve", "request"]


def test_csv_export_quotes_cells_a_spreadsheet_would_run(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    db.upgrade(url)
    event = audit.record(
        url,
        ALICE,
        "request",
        model='=HYPERLINK("http://evil.example","x")',
        version="-2+3",
        reason="=cmd|' /C calc'!A0",
    )
    (row,) = csv.DictReader(io.StringIO(audit.export_csv(url)))
    assert row["reason"] == "'=cmd|' /C calc'!A0"
    assert row["model_name"] == "'" + event.model_name and row["version"] == "'-2+3"
    assert row["id"] == str(event.id) and row["hash"] == event.hash


def test_an_edited_event_is_named_as_the_first_broken_one(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    events = _seed(url)
    with db.get_engine(url).begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET reason = 'nothing to see' WHERE id = :id"),
            {"id": events[1].id},
        )
    status = audit.verify(url)
    assert not status.ok and status.first_broken_id == events[1].id
    assert "edited" in status.reason and status.checked == 1


def test_a_deleted_event_breaks_the_chain_at_the_next_one(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    events = _seed(url)
    with db.get_engine(url).begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[1].id})
    status = audit.verify(url)
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
def test_postgresql_refuses_to_rewrite_history(pg_url: str, statement: str) -> None:
    _seed(pg_url, n=2)
    with pytest.raises(DBAPIError, match="append-only"), db.get_engine(pg_url).begin() as c:
        c.execute(text(statement))
    assert audit.verify(pg_url).checked == 2


@pytest.mark.postgres
def test_postgresql_tampering_behind_the_trigger_is_still_detected(pg_url: str) -> None:
    events = _seed(pg_url, n=3)
    # A superuser can switch the trigger off; the chain still gives the edit away.
    with db.get_engine(pg_url).begin() as connection:
        connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        connection.execute(
            text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": events[2].id}
        )
    assert audit.verify(pg_url).first_broken_id == events[2].id


@pytest.mark.postgres
def test_concurrent_appends_keep_one_linear_chain(pg_url: str) -> None:
    db.upgrade(pg_url)
    writers, per_writer = 8, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for i in range(per_writer):
                audit.record(pg_url, ALICE, "request", model=f"m{n}", version=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status = audit.verify(pg_url)
    assert status.ok and status.checked == writers * per_writer

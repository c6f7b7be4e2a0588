"""On PostgreSQL the panel connects as a role that may read and append the audit log but
never rewrite it; the schema's owner runs the migrations (MLOPS_DB_MIGRATE_URL).

The two roles are made for each test, as deploy/postgres-init.sql makes them: the owner
owns the database, the panel's role may not create anything in it.
"""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.errors import ConfigError, PermissionDenied
from mlops_core.governance.promotion.state import claim
from mlops_core.people.auth import authenticate
from mlops_core.people.sessions import end_session, start_session
from mlops_core.people.tokens import create_token, revoke_token
from mlops_core.people.user_admin import manage_user, remove_user
from mlops_core.stores import audit, db
from tests.conftest import settings_for
from tests.pg import ROLE_PASSWORD, fresh_pg_url, temporary_roles
from tests.test_audit import ALICE, AUDIT_KEY, _forge
from tests.test_db import _open_request

pytestmark = pytest.mark.postgres

REWRITES = [
    "UPDATE audit_event SET reason = 'rewritten'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
    "ALTER TABLE audit_event DISABLE TRIGGER USER",
    "DROP TRIGGER audit_event_no_update_delete ON audit_event",
    "DROP TABLE audit_event",
    "ALTER TABLE audit_event DROP CONSTRAINT audit_event_prev_hash_key",
]


@pytest.fixture
def split_roles(tmp_path: Path) -> Iterator[Settings]:
    """Settings whose panel connects as its own role and migrates as the owner."""
    with temporary_roles("mlops_owner", "mlops_panel") as (owner, panel), fresh_pg_url() as url:
        database = make_url(url).database
        with db.get_engine(url).begin() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" OWNER TO "{owner}"'))
            connection.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        as_role = {
            name: make_url(url)
            .set(username=name, password=ROLE_PASSWORD)
            .render_as_string(hide_password=False)
            for name in (owner, panel)
        }
        settings = settings_for(
            tmp_path,
            MLOPS_DB_URL=as_role[panel],
            MLOPS_DB_MIGRATE_URL=as_role[owner],
            MLOPS_AUDIT_KEY=AUDIT_KEY,
        )
        try:
            yield settings
        finally:
            for role_url in as_role.values():
                db.get_engine(role_url).dispose()


def _panel_only(settings: Settings) -> Settings:
    """The same panel without the owner's URL, as the panel container runs."""
    return replace(settings, db_migrate_url=None)


def test_the_panel_role_may_append_and_read_but_never_rewrite_the_audit_log(
    split_roles: Settings,
) -> None:
    assert split_roles.db_app_role == make_url(split_roles.db_url).username
    # Its own role cannot create the schema: the error says who must.
    with pytest.raises(ConfigError, match="MLOPS_DB_URL: its user may not change the panel"):
        db.migrate(_panel_only(split_roles))
    db.migrate(split_roles)
    # Once the owner migrated, the panel starts on its own role (nothing left to migrate).
    panel = _panel_only(split_roles)
    db.migrate(panel)

    events = [audit.record(panel, ALICE, "request", reason=str(i)) for i in range(2)]
    assert [e.id for e in audit.list_events(panel.db_url)] == [e.id for e in reversed(events)]
    assert audit.verify(panel).ok

    engine = db.get_engine(panel.db_url)
    for statement in REWRITES:
        with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
            connection.execute(text(statement))
        assert refused.value.orig.pgcode == db.INSUFFICIENT_PRIVILEGE, statement
    status = audit.verify(panel)
    assert status.ok and status.checked == 2

    # Appending is what it may do; without the key, what it appends gives itself away.
    forged = _forge(panel)
    assert audit.verify(panel).first_broken_id == forged


def test_the_panel_role_may_do_everything_the_workflow_does(
    split_roles: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # As the compose `migrate` service does it.
    for name, value in {
        "MLOPS_DATA_DIR": str(split_roles.data_dir),
        "MLOPS_DB_URL": split_roles.db_url,
        "MLOPS_DB_MIGRATE_URL": split_roles.migrate_url,
        "MLOPS_AUDIT_KEY": AUDIT_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 0
    assert f"the panel connects as {split_roles.db_app_role}" in capsys.readouterr().out
    sessions = db.session_factory(split_roles.db_url)
    with sessions.begin() as session:
        request = _open_request()
        session.add(request)
        session.flush()
        claim(session, request.id, ("pending",), "decide").status = "approved"
        session.add(
            db.Decision(
                request_id=request.id,
                actor="approver",
                actor_via="local",
                verdict="approve",
                comment="ok",
                gates=[],
            )
        )
    with sessions.begin() as session:
        assert session.scalar(select(db.PromotionRequest.status)) == "approved"
        assert session.scalar(select(db.Decision.verdict)) == "approve"
    # Accounts, sign-in back-off, sessions and tokens, as the panel's role.
    panel = _panel_only(split_roles)
    manage_user(panel, None, "alice", "long-enough-pw", ["admin"])
    with pytest.raises(PermissionDenied):
        authenticate(panel, "alice", "wrong-password", client="10.0.0.1")
    alice = authenticate(panel, "alice", "long-enough-pw", client="10.0.0.2")
    end_session(panel, start_session(panel, alice))
    token = create_token(panel, alice, "laptop", days=1)
    revoke_token(panel, alice, token.info.id)
    manage_user(panel, alice, "bob", "long-enough-pw", ["viewer"])
    remove_user(panel, alice, "bob")

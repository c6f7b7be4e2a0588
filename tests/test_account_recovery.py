"""Admins unlock an account and reset a password, from the core and the command line; a
sign-in session (the secret the browser's cookie holds) lasts MLOPS_SESSION_HOURS and ends
for good on sign-out and on a reset. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import pytest

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, PermissionDenied
from mlops_core.people.account_status import account_statuses, role_grants
from mlops_core.people.accounts import create_demo_accounts, get_account
from mlops_core.people.auth import FREE_FAILURES, authenticate
from mlops_core.people.sessions import end_session, session_actor, start_session
from mlops_core.people.user_admin import manage_user, reset_password, unlock_user
from mlops_core.stores import audit, db
from mlops_core.stores.db import utcnow
from tests.conftest import settings_for
from tests.test_tokens import demo_token, signed_in

ADDRESSES = ("203.0.113.9", "198.51.100.7")


@pytest.fixture
def settings(tmp_path: Path, panel_db_url: str) -> Settings:
    settings = dataclasses.replace(settings_for(tmp_path), db_url=panel_db_url)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    return settings


def lock_out(settings: Settings, username: str) -> None:
    """Fail sign-ins from two addresses until both back off."""
    for client in ADDRESSES:
        for _ in range(FREE_FAILURES + 1):
            with pytest.raises(PermissionDenied):
                authenticate(settings, username, "not-the-password", client=client)


def test_an_admin_unlocks_an_account_from_every_address(settings: Settings) -> None:
    admin, viewer = signed_in(settings, "admin"), signed_in(settings, "viewer")
    lock_out(settings, "approver")
    with pytest.raises(PermissionDenied, match="Too many failed sign-ins"):
        authenticate(settings, "approver", "approver-demo", client=ADDRESSES[0])
    (status,) = [s for s in account_statuses(settings, admin) if s.user.username == "approver"]
    assert status.locked_addresses == 2 and status.locked_until > utcnow()

    with pytest.raises(PermissionDenied, match="needs the admin role"):
        unlock_user(settings, viewer, "approver")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        account_statuses(settings, viewer)
    with pytest.raises(PermissionDenied, match="Not signed in"):
        role_grants(settings, None)
    with pytest.raises(InvalidInput, match="no account 'nobody'"):
        unlock_user(settings, admin, "nobody")

    unlock_user(settings, admin, " Approver ")
    assert all(s.locked_until is None for s in account_statuses(settings, admin))
    for client in ADDRESSES:
        assert authenticate(settings, "approver", "approver-demo", client=client)
    (event,) = audit.list_events(settings.db_url, audit.AuditFilter(action="account_unlocked"))
    assert (event.actor, event.details) == (
        "admin",
        {"username": "approver", "addresses_cleared": 2},
    )


def test_a_reset_password_signs_out_every_browser_and_unlocks(settings: Settings) -> None:
    admin = signed_in(settings, "admin")
    approver = signed_in(settings, "approver")
    assert get_account(settings, "approver").last_sign_in_at is not None
    laptop, phone = start_session(settings, approver), start_session(settings, approver)
    lock_out(settings, "approver")

    with pytest.raises(PermissionDenied, match="needs the admin role"):
        reset_password(settings, approver, "approver", "chosen-by-me")
    with pytest.raises(InvalidInput, match="at least 8 characters"):
        reset_password(settings, admin, "approver", "short")
    manage_user(settings, admin, "ci", None, ["requester"], service=True)
    with pytest.raises(InvalidInput, match="ci is a service account"):
        reset_password(settings, admin, "ci", "long-enough-pw")
    with pytest.raises(InvalidInput, match="no account 'ghost'"):
        reset_password(settings, admin, "ghost", "long-enough-pw")
    assert session_actor(settings, laptop).username == "approver"

    reset_password(settings, admin, "approver", "a-new-password")
    assert session_actor(settings, laptop) is None and session_actor(settings, phone) is None
    with pytest.raises(PermissionDenied, match="Wrong username or password"):
        authenticate(settings, "approver", "approver-demo", client=ADDRESSES[0])
    assert authenticate(settings, "approver", "a-new-password", client=ADDRESSES[1])
    (event,) = audit.list_events(settings.db_url, audit.AuditFilter(action="password_reset"))
    assert event.details == {"username": "approver"}
    assert "a-new-password" not in repr(audit.list_events(settings.db_url))
    assert audit.verify(settings).ok


def test_a_session_lasts_the_configured_hours_and_ends_on_sign_out(settings: Settings) -> None:
    short = dataclasses.replace(settings, session_hours=2)
    secret = start_session(short, signed_in(short, "viewer"))
    assert session_actor(short, secret, now=utcnow() + timedelta(hours=1, minutes=59))
    assert session_actor(short, secret, now=utcnow() + timedelta(hours=2)) is None
    # Signing out deletes the row: the same secret, pasted back from a cookie, is worthless.
    end_session(short, secret)
    assert session_actor(short, secret) is None


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """The CLI in-process on a fresh SQLite store with the demo accounts."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    settings = settings_for(tmp_path)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)

    def run(*args: str, token_of: str | None = None, stdin: str = "") -> tuple[int, str, str]:
        if token_of is None:
            monkeypatch.delenv("MLOPS_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MLOPS_TOKEN", demo_token(settings, token_of))
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return settings, run


def test_unlock_and_reset_password_from_the_command_line(cli) -> None:
    settings, run = cli
    lock_out(settings, "requester")
    code, _, err = run("users", "unlock", "requester")
    assert code != 0 and "needs an access token" in err
    code, _, err = run("users", "unlock", "requester", token_of="viewer")
    assert code != 0 and "needs the admin role" in err
    code, out, _ = run("users", "unlock", "requester", token_of="admin")
    assert code == 0 and "Unlocked requester" in out
    assert authenticate(settings, "requester", "requester-demo", client=ADDRESSES[0])

    code, _, err = run(
        "users", "reset-password", "requester", "--password-stdin", token_of="admin", stdin="x\n"
    )
    assert code != 0 and "at least 8 characters" in err
    code, out, _ = run(
        "users",
        "reset-password",
        "requester",
        "--password-stdin",
        token_of="admin",
        stdin="from-the-cli\n",
    )
    assert code == 0 and "New password set for requester" in out
    assert authenticate(settings, "requester", "from-the-cli")

"""Local accounts: password hashing, the users file import, sign-in and its back-off."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlops_core.config import Settings
from mlops_core.errors import ConfigError, PermissionDenied
from mlops_core.people import auth
from mlops_core.people.accounts import (
    DEMO_PASSWORDS,
    create_demo_accounts,
    get_account,
    has_accounts,
    list_accounts,
)
from mlops_core.people.auth import authenticate, resolve_local_actor
from mlops_core.people.passwords import hash_password, verify_password
from mlops_core.people.sessions import (
    end_session,
    session_actor,
    session_lifetime,
    start_session,
)
from mlops_core.people.user_admin import BOOTSTRAP, disable_user, manage_user, remove_user
from mlops_core.people.users_file import load_users_file
from mlops_core.stores import audit, db
from mlops_core.stores.db import utcnow
from tests.conftest import settings_for

T0 = datetime(2025, 3, 1, 12, 0)
SECOND = timedelta(seconds=1)
ATTACKER, OWNER = "203.0.113.9", "198.51.100.7"


@pytest.fixture
def settings(tmp_path: Path, panel_db_url: str) -> Settings:
    """An empty data folder with the panel database on SQLite or PostgreSQL."""
    settings = dataclasses.replace(settings_for(tmp_path / "data"), db_url=panel_db_url)
    db.upgrade(settings.db_url)
    return settings


@pytest.fixture
def demo(settings: Settings) -> Settings:
    create_demo_accounts(settings)
    return settings


def fail(settings: Settings, username: str, at: datetime, client: str | None = ATTACKER) -> str:
    with pytest.raises(PermissionDenied) as raised:
        authenticate(settings, username, "not-the-password", client=client, now=at)
    return str(raised.value)


def count_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every password check sign-in makes (thread-safe)."""
    checked: list[str] = []
    lock = threading.Lock()
    real: Callable[[str, str], bool] = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        with lock:
            checked.append(password)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    return checked


def throttle_rows(settings: Settings, **where: object) -> int:
    query = select(func.count()).select_from(db.SignInThrottle).filter_by(**where)
    with db.session_factory(settings.db_url)() as session:
        return session.scalar(query)


# --- hashing ----------------------------------------------------------------------------


def test_same_password_gets_different_salted_hashes() -> None:
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret-pass", first)
    assert verify_password("s3cret-pass", second)


def test_wrong_password_fails() -> None:
    stored = hash_password("s3cret-pass")
    assert not verify_password("s3cret-pasS", stored)
    assert not verify_password("", stored)


def test_hash_never_contains_the_password() -> None:
    password = "correct horse battery staple"
    stored = hash_password(password)
    assert password not in stored
    assert "correct" not in stored


@pytest.mark.parametrize(
    "stored", ["admin-demo", "", "bcrypt$1$2$3$AA==$AA==", "scrypt$x$8$1$AA==$AA==", "scrypt$1"]
)
def test_malformed_hash_matches_nothing(stored: str) -> None:
    assert not verify_password("admin-demo", stored)


# --- the users file: imported once into an empty store ------------------------------------


def write_users_file(settings: Settings, text: str) -> None:
    settings.users_file.parent.mkdir(parents=True, exist_ok=True)
    settings.users_file.write_text(text, encoding="utf-8")


def test_users_file_is_imported_once_into_an_empty_store(settings: Settings) -> None:
    write_users_file(
        settings,
        f'[users."zoe.admin"]\npassword_hash = "{hash_password("a-long-password")}"\n'
        f'roles = ["admin"]\nemail = "zoe@example.com"\ndisplay_name = "Zoë \\"Z\\""\n\n'
        f'[users.bob]\npassword_hash = "{hash_password("bobs-password")}"\nroles = ["viewer"]\n',
    )
    assert has_accounts(settings)
    zoe = get_account(settings, "Zoe.Admin")
    assert zoe is not None and zoe.roles == {"admin"} and zoe.email == "zoe@example.com"
    assert zoe.display_name == 'Zoë "Z"'
    assert authenticate(settings, "bob", "bobs-password").roles == {"viewer"}
    (event,) = audit.list_events(settings.db_url)
    assert (event.actor, event.action) == ("system", "accounts_imported")
    assert event.details["usernames"] == ["bob", "zoe.admin"]

    admin = resolve_local_actor(settings, "zoe.admin")
    remove_user(settings, admin, "bob")
    # The file still names bob, but an account an admin removed stays removed.
    assert [u.username for u in list_accounts(settings)] == ["zoe.admin"]
    imports = audit.list_events(settings.db_url, audit.AuditFilter(action="accounts_imported"))
    assert len(imports) == 1


def test_missing_users_file_means_no_accounts(settings: Settings) -> None:
    assert not has_accounts(settings)
    assert get_account(settings, "bob") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[users.bob\n", "not valid TOML"),
        ('[users.bob]\npassword_hash = "bobs-password"\n', "users.bob.password_hash"),
        ("[users.bob]\nroles = []\n", "users.bob.password_hash"),
        ('[users.Bob]\npassword_hash = "{hash}"\n', "users.Bob: a username"),
        ('[users.bob]\npassword_hash = "{hash}"\nroles = ["boss"]\n', "users.bob.roles"),
        ('[users.bob]\npassword_hash = "{hash}"\nemail = 3\n', "users.bob.email"),
        ('users = "bob"\n', "users must be a table"),
    ],
)
def test_invalid_users_file_names_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text.replace("{hash}", hash_password("long-enough")), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_users_file(path)


# --- demo accounts ------------------------------------------------------------------------


def test_demo_accounts_only_seed_an_empty_store(settings: Settings) -> None:
    assert create_demo_accounts(settings) == ["viewer", "requester", "approver", "admin"]
    assert create_demo_accounts(settings) == []
    admin = resolve_local_actor(settings, "admin")
    manage_user(settings, admin, "admin", "changed-password", ["admin"])
    remove_user(settings, admin, "viewer")
    assert create_demo_accounts(settings) == []
    users = {u.username: u for u in list_accounts(settings)}
    assert set(users) == {"requester", "approver", "admin"}
    for role in ("requester", "approver"):
        assert users[role].roles == {role}
        assert verify_password(f"{role}-demo", users[role].password_hash or "")
    assert verify_password("changed-password", users["admin"].password_hash or "")
    assert DEMO_PASSWORDS["admin"] == "admin-demo"


# --- sign-in ------------------------------------------------------------------------------


def test_authenticate_returns_local_actor(demo: Settings) -> None:
    demo.access_file.parent.mkdir(parents=True, exist_ok=True)
    demo.access_file.write_text('[roles]\nrequester = ["approver"]\n', encoding="utf-8")
    actor = authenticate(demo, " Approver ", "approver-demo", now=T0)
    assert actor.username == "approver"
    assert actor.roles == {"approver", "requester"}
    assert actor.auth_method == "local"
    assert actor.display_name == "Demo approver"


def test_unknown_user_and_wrong_password_get_the_same_message(demo: Settings) -> None:
    assert fail(demo, "admin", T0) == fail(demo, "nobody", T0) == auth.WRONG_CREDENTIALS


def test_service_and_disabled_accounts_cannot_sign_in_with_a_password(demo: Settings) -> None:
    admin = resolve_local_actor(demo, "admin")
    manage_user(demo, admin, "ci", None, ["requester"], service=True)
    disable_user(demo, admin, "approver")
    for name, password in (("ci", ""), ("approver", "approver-demo")):
        with pytest.raises(PermissionDenied, match=auth.WRONG_CREDENTIALS):
            authenticate(demo, name, password, now=T0)
    with pytest.raises(PermissionDenied, match="no usable account"):
        resolve_local_actor(demo, "approver")
    disable_user(demo, admin, "approver", disabled=False)
    assert authenticate(demo, "approver", "approver-demo", now=T0).username == "approver"


# --- back-off -----------------------------------------------------------------------------


def test_waits_grow_after_three_failures_and_refused_attempts_are_not_checked(
    demo: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(auth.FREE_FAILURES):
        assert fail(demo, "admin", T0) == auth.WRONG_CREDENTIALS
    assert fail(demo, "admin", T0) == auth.WRONG_CREDENTIALS  # the 4th is checked, then waits
    checked = count_checks(monkeypatch)
    assert fail(demo, "admin", T0 + SECOND).endswith("try again in 1 second.")
    assert fail(demo, "admin", T0 + 2 * SECOND) == auth.WRONG_CREDENTIALS  # the 5th: 4 s
    message = fail(demo, "admin", T0 + 3 * SECOND)
    assert message == (
        "Too many failed sign-ins for admin from this address; try again in 3 seconds."
    )
    assert len(checked) == 1
    assert [auth.backoff(n).total_seconds() for n in range(1, 8)] == [0, 0, 0, 2, 4, 8, 16]
    assert auth.backoff(10_000) == auth.MAX_DELAY
    # Waiting out the back-off, the right password works and clears the count.
    assert authenticate(demo, "admin", "admin-demo", client=ATTACKER, now=T0 + 6 * SECOND)
    assert throttle_rows(demo, username="admin") == 0


def test_another_address_is_not_held_back(demo: Settings) -> None:
    for _ in range(6):
        fail(demo, "admin", T0)
    assert "Too many failed sign-ins" in fail(demo, "admin", T0 + SECOND)
    actor = authenticate(demo, "admin", "admin-demo", client=OWNER, now=T0 + SECOND)
    assert actor.username == "admin"
    # The command line counts as its own client.
    assert authenticate(demo, "admin", "admin-demo", client=None, now=T0 + SECOND)
    assert "Too many failed sign-ins" in fail(demo, "admin", T0 + SECOND)


def test_forty_parallel_guesses_check_at_most_four(
    demo: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_checks(monkeypatch)
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda _: fail(demo, "admin", T0), range(40)))
    assert len(checked) == auth.FREE_FAILURES + 1
    assert answers.count(auth.WRONG_CREDENTIALS) == auth.FREE_FAILURES + 1
    assert all("Too many failed sign-ins" in a for a in answers if a != auth.WRONG_CREDENTIALS)
    with db.session_factory(demo.db_url)() as session:
        row = session.scalars(select(db.SignInThrottle)).one()
    assert (row.username, row.client, row.failures) == ("admin", ATTACKER, 4)
    assert authenticate(demo, "admin", "admin-demo", client=OWNER, now=T0).username == "admin"


def test_unknown_usernames_back_off_alike_but_their_rows_are_capped(
    demo: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        fail(demo, "ghost", T0)
    assert "Too many failed sign-ins for ghost" in fail(demo, "ghost", T0 + SECOND)
    fail(demo, "admin", T0)
    monkeypatch.setattr(auth, "MAX_UNKNOWN_ROWS", 5)
    for n in range(20):
        fail(demo, f"guess-{n}", T0, client=f"192.0.2.{n}")
    assert throttle_rows(demo, known=False) == 5
    assert throttle_rows(demo, username="admin") == 1


def test_a_quiet_hour_forgets_failures_and_old_rows_are_pruned(demo: Settings) -> None:
    for _ in range(4):
        fail(demo, "viewer", T0)
    fail(demo, "requester", T0, client=OWNER)
    later = T0 + auth.FORGET_AFTER + SECOND
    assert fail(demo, "viewer", later) == auth.WRONG_CREDENTIALS
    assert fail(demo, "viewer", later) == auth.WRONG_CREDENTIALS
    # Starting again from zero pruned requester's stale pair.
    with db.session_factory(demo.db_url)() as session:
        rows = session.execute(select(db.SignInThrottle.username, db.SignInThrottle.failures))
        assert rows.all() == [("viewer", 2)]


def test_back_off_holds_across_processes(demo: Settings) -> None:
    for _ in range(5):
        fail(demo, "admin", T0)
    script = (
        "import dataclasses, sys, datetime\n"
        "from mlops_core.people.auth import authenticate\n"
        "from mlops_core.config import load_settings\n"
        "from mlops_core.errors import PermissionDenied\n"
        "settings = dataclasses.replace(load_settings(), db_url=sys.argv[1])\n"
        "now = datetime.datetime.fromisoformat(sys.argv[2])\n"
        "try:\n"
        f"    authenticate(settings, 'admin', 'admin-demo', client={ATTACKER!r}, now=now)\n"
        "except PermissionDenied as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "MLOPS_DATA_DIR": str(demo.data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", script, demo.db_url, (T0 + SECOND).isoformat()],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    assert result.stdout.strip().endswith("try again in 1 second.")


# --- session actors -----------------------------------------------------------------------


def test_local_actor_sees_role_changes(demo: Settings) -> None:
    assert resolve_local_actor(demo, "viewer").roles == {"viewer"}
    manage_user(demo, resolve_local_actor(demo, "admin"), "viewer", None, ["requester"])
    actor = resolve_local_actor(demo, "viewer")
    assert actor.roles == {"requester"}
    assert actor.auth_method == "local"


def test_the_first_account_bootstraps(settings: Settings) -> None:
    manage_user(settings, None, "root", "long-enough-pw", ["admin"])
    (event,) = audit.list_events(settings.db_url)
    assert event.actor == BOOTSTRAP.username


# --- sign-in sessions -----------------------------------------------------------------------


def test_sessions_end_on_expiry_sign_out_password_change_and_disabling(demo: Settings) -> None:
    admin = resolve_local_actor(demo, "admin")
    approver = authenticate(demo, "approver", "approver-demo")
    secret = start_session(demo, approver)
    assert session_actor(demo, secret).username == "approver"
    assert session_actor(demo, secret, now=utcnow() + session_lifetime(demo)) is None
    end_session(demo, secret)
    assert session_actor(demo, secret) is None

    viewer = start_session(demo, authenticate(demo, "viewer", "viewer-demo"))
    secret = start_session(demo, approver)
    manage_user(demo, admin, "approver", None, ["approver", "requester"])
    assert session_actor(demo, secret).roles == {"approver", "requester"}
    manage_user(demo, admin, "approver", "new-password", ["approver"])
    assert session_actor(demo, secret) is None
    secret = start_session(demo, approver)
    disable_user(demo, admin, "approver")
    assert session_actor(demo, secret) is None
    # Other people's sessions go on.
    assert session_actor(demo, viewer).username == "viewer"

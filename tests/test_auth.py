"""Local accounts: password hashing, the users file, sign-in and its rate limit."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from mlops_core.config import Settings, load_settings
from mlops_core.errors import ConfigError, InvalidInput, PermissionDenied
from mlops_core.people import auth
from mlops_core.people.auth import (
    DEMO_PASSWORDS,
    add_or_update_user,
    authenticate,
    create_demo_accounts,
    hash_password,
    load_users,
    resolve_cli_actor,
    resolve_local_actor,
    verify_password,
)
from mlops_core.stores import db
from tests.pg import fresh_pg_url

T0 = datetime(2025, 3, 1, 12, 0)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def rate_limit_pg_url() -> Iterator[str]:
    with fresh_pg_url() as url:
        db.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'panel.db'}"
        db.upgrade(url)
        return url
    url = request.getfixturevalue("rate_limit_pg_url")
    with db.session_factory(url).begin() as session:
        session.execute(delete(db.SignInFailure))
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"MLOPS_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def demo(settings: Settings) -> Settings:
    create_demo_accounts(settings.users_file)
    return settings


@pytest.fixture
def demo_db(demo: Settings, db_url: str) -> Settings:
    return dataclasses.replace(demo, db_url=db_url)


def fail(settings: Settings, username: str, at: datetime) -> str:
    with pytest.raises(PermissionDenied) as raised:
        authenticate(settings, username, "not-the-password", now=at)
    return str(raised.value)


def password_must_not_be_checked(password: str, stored: str) -> bool:
    raise AssertionError("a password was checked while the account is locked")


def failure_count(settings: Settings, username: str) -> int:
    with db.session_factory(settings.db_url).begin() as session:
        return session.scalar(select(func.count()).where(db.SignInFailure.username == username))


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


# --- users file -------------------------------------------------------------------------


def test_users_file_round_trip(settings: Settings) -> None:
    tricky = 'Zoë "Z" \\ back\nslash\t\x7f 😀 ] = [users.x]'
    add_or_update_user(
        settings.users_file,
        " Zoe.Admin ",
        "a-long-password",
        ["approver", "requester"],
        email="zoe@example.com",
        display_name=tricky,
    )
    add_or_update_user(settings.users_file, "bob", "bobs-password", ["viewer"])
    users = load_users(settings.users_file)
    assert set(users) == {"zoe.admin", "bob"}
    zoe = users["zoe.admin"]
    assert zoe.roles == {"approver", "requester"}
    assert zoe.email == "zoe@example.com"
    assert zoe.display_name == tricky
    assert verify_password("a-long-password", zoe.password_hash)
    assert users["bob"].email is None
    text = settings.users_file.read_text(encoding="utf-8")
    assert "a-long-password" not in text and "bobs-password" not in text
    assert stat.S_IMODE(settings.users_file.stat().st_mode) == 0o600
    assert [p.name for p in settings.users_file.parent.iterdir()] == ["users.toml"]


def test_update_without_password_keeps_it(settings: Settings) -> None:
    add_or_update_user(settings.users_file, "bob", "bobs-password", ["viewer"])
    add_or_update_user(settings.users_file, "bob", None, ["approver"], email="bob@example.com")
    bob = load_users(settings.users_file)["bob"]
    assert bob.roles == {"approver"}
    assert bob.email == "bob@example.com"
    assert verify_password("bobs-password", bob.password_hash)


@pytest.mark.parametrize(
    ("username", "password", "roles", "email", "message"),
    [
        ("new", None, ["viewer"], None, "needs a password"),
        ("bob", "short", ["viewer"], None, "at least 8 characters"),
        ("bob smith", "long-enough", ["viewer"], None, "is not valid"),
        ("", "long-enough", ["viewer"], None, "is not valid"),
        ("bob", "long-enough", ["owner"], None, "Unknown role 'owner'"),
        ("bob", "long-enough", ["viewer"], "not-an-address", "not a valid address"),
    ],
)
def test_add_user_rejects_bad_input(
    settings: Settings,
    username: str,
    password: str | None,
    roles: list[str],
    email: str | None,
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        add_or_update_user(settings.users_file, username, password, roles, email=email)
    assert not settings.users_file.exists()


def test_demo_accounts_one_per_role_and_idempotent(settings: Settings) -> None:
    assert create_demo_accounts(settings.users_file) == ["viewer", "requester", "approver", "admin"]
    add_or_update_user(settings.users_file, "admin", "changed-password", ["admin"])
    assert create_demo_accounts(settings.users_file) == []
    users = load_users(settings.users_file)
    for role in ("viewer", "requester", "approver"):
        assert users[role].roles == {role}
        assert verify_password(f"{role}-demo", users[role].password_hash)
    assert verify_password("changed-password", users["admin"].password_hash)
    assert DEMO_PASSWORDS["admin"] == "admin-demo"


def test_missing_users_file_means_no_accounts(tmp_path: Path) -> None:
    assert load_users(tmp_path / "absent.toml") == {}


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
def test_invalid_users_file_names_key(settings: Settings, text: str, message: str) -> None:
    settings.users_file.parent.mkdir(parents=True)
    settings.users_file.write_text(
        text.replace("{hash}", hash_password("long-enough")), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=message):
        load_users(settings.users_file)


# --- sign-in ----------------------------------------------------------------------------


def test_authenticate_returns_local_actor(demo_db: Settings) -> None:
    demo_db.access_file.write_text('[roles]\nrequester = ["approver"]\n', encoding="utf-8")
    actor = authenticate(demo_db, " Approver ", "approver-demo", now=T0)
    assert actor.username == "approver"
    assert actor.roles == {"approver", "requester"}
    assert actor.auth_method == "local"
    assert actor.display_name == "Demo approver"


def test_unknown_user_and_wrong_password_get_the_same_message(demo_db: Settings) -> None:
    assert fail(demo_db, "admin", T0) == fail(demo_db, "nobody", T0) == auth.WRONG_CREDENTIALS
    assert failure_count(demo_db, "admin") == 1
    assert failure_count(demo_db, "nobody") == 1


def test_five_failures_lock_the_user_and_the_lock_expires(
    demo_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for minute in range(5):
        fail(demo_db, "admin", T0 + minute * MINUTE)
    with monkeypatch.context() as patched:
        # While locked, no password is even checked.
        patched.setattr(auth, "verify_password", password_must_not_be_checked)
        with pytest.raises(PermissionDenied) as raised:
            authenticate(demo_db, "admin", "admin-demo", now=T0 + 4 * MINUTE)
        assert str(raised.value) == ("Too many failed sign-ins for admin; try again in 15 minutes.")
        with pytest.raises(PermissionDenied, match="try again in 1 minute\\."):
            authenticate(
                demo_db, "admin", "admin-demo", now=T0 + 18 * MINUTE + timedelta(seconds=30)
            )
    # Other accounts are not affected by admin's lock.
    assert authenticate(demo_db, "viewer", "viewer-demo", now=T0 + 5 * MINUTE).username == "viewer"
    actor = authenticate(demo_db, "admin", "admin-demo", now=T0 + 19 * MINUTE)
    assert actor.username == "admin"
    assert failure_count(demo_db, "admin") == 0


def test_success_resets_the_failure_count(demo_db: Settings) -> None:
    for minute in range(4):
        fail(demo_db, "requester", T0 + minute * MINUTE)
    authenticate(demo_db, "requester", "requester-demo", now=T0 + 4 * MINUTE)
    for minute in range(5, 9):
        fail(demo_db, "requester", T0 + minute * MINUTE)
    assert authenticate(demo_db, "requester", "requester-demo", now=T0 + 9 * MINUTE)


def test_failures_spread_beyond_the_window_do_not_lock(demo_db: Settings) -> None:
    for minute in range(0, 20, 4):
        assert fail(demo_db, "viewer", T0 + minute * MINUTE) == auth.WRONG_CREDENTIALS
    assert authenticate(demo_db, "viewer", "viewer-demo", now=T0 + 17 * MINUTE)


def test_unknown_usernames_lock_like_real_ones(demo_db: Settings) -> None:
    for minute in range(5):
        fail(demo_db, "ghost", T0 + minute * MINUTE)
    assert "Too many failed sign-ins for ghost" in fail(demo_db, "ghost", T0 + 5 * MINUTE)


def test_old_failures_are_pruned(demo_db: Settings) -> None:
    for minute in range(3):
        fail(demo_db, "viewer", T0 + minute * MINUTE)
    fail(demo_db, "viewer", T0 + 2 * 60 * MINUTE)
    assert failure_count(demo_db, "viewer") == 1


def test_lock_holds_across_processes(demo_db: Settings) -> None:
    for minute in range(5):
        fail(demo_db, "admin", T0 + minute * MINUTE)
    script = (
        "import dataclasses, sys, datetime\n"
        "from mlops_core.people.auth import authenticate\n"
        "from mlops_core.config import load_settings\n"
        "from mlops_core.errors import PermissionDenied\n"
        "settings = dataclasses.replace(load_settings(), db_url=sys.argv[1])\n"
        "now = datetime.datetime.fromisoformat(sys.argv[2])\n"
        "try:\n"
        "    authenticate(settings, 'admin', 'admin-demo', now=now)\n"
        "except PermissionDenied as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "MLOPS_DATA_DIR": str(demo_db.data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", script, demo_db.db_url, (T0 + 10 * MINUTE).isoformat()],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    assert result.stdout.strip() == "Too many failed sign-ins for admin; try again in 9 minutes."


# --- CLI and session actors -------------------------------------------------------------


def test_cli_actor_uses_the_same_users_and_roles(demo: Settings) -> None:
    demo.access_file.write_text('[roles]\napprover = ["admin"]\n', encoding="utf-8")
    actor = resolve_cli_actor(demo, "Admin")
    assert actor.username == "admin"
    assert actor.roles == {"admin", "approver"}
    assert actor.auth_method == "cli"


def test_cli_actor_unknown_user_is_refused(demo: Settings) -> None:
    with pytest.raises(PermissionDenied, match="Unknown user 'mallory'"):
        resolve_cli_actor(demo, "mallory")


def test_local_actor_sees_role_changes(demo: Settings) -> None:
    assert resolve_local_actor(demo, "viewer").roles == {"viewer"}
    add_or_update_user(demo.users_file, "viewer", None, ["requester"])
    actor = resolve_local_actor(demo, "viewer")
    assert actor.roles == {"requester"}
    assert actor.auth_method == "local"

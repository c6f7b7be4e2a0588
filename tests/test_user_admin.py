"""Managing accounts is an admin's action: refused to others, recorded in the audit log, and
safe when several processes change accounts at once (they live in the panel database)."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused, InvalidInput, PermissionDenied
from mlops_core.people.accounts import get_account, list_accounts
from mlops_core.people.auth import resolve_local_actor
from mlops_core.people.user_admin import BOOTSTRAP, disable_user, manage_user, remove_user
from mlops_core.stores import audit, db
from tests.conftest import settings_for


@pytest.fixture
def settings(tmp_path: Path, panel_db_url: str) -> Settings:
    settings = dataclasses.replace(settings_for(tmp_path), db_url=panel_db_url)
    db.upgrade(settings.db_url)
    return settings


def roles_of(settings: Settings, name: str) -> frozenset[str]:
    user = get_account(settings, name)
    assert user is not None
    return user.roles


def test_first_account_bootstraps_then_only_admins_manage_roles(settings: Settings) -> None:
    manage_user(settings, None, "root", "long-enough-pw", ["admin"])
    admin = resolve_local_actor(settings, "root")
    manage_user(settings, admin, "carol", "another-password", ["requester"])
    carol = resolve_local_actor(settings, "carol")

    with pytest.raises(PermissionDenied, match="needs the admin role"):
        manage_user(settings, carol, "carol", None, ["requester", "approver"])
    with pytest.raises(PermissionDenied, match="Not signed in"):
        manage_user(settings, None, "mallory", "whatever-pass", ["admin"])
    assert roles_of(settings, "carol") == {"requester"}

    manage_user(settings, admin, "carol", None, ["requester", "approver"])
    assert roles_of(settings, "carol") == {"requester", "approver"}

    events = audit.list_events(settings.db_url)
    changes = [(e.actor, e.details["username"], e.details["roles"]) for e in events]
    assert sorted(changes) == sorted(
        [
            (BOOTSTRAP.username, "root", ["admin"]),
            ("root", "carol", ["requester"]),
            ("root", "carol", ["approver", "requester"]),
        ]
    )
    assert audit.verify(settings).ok


@pytest.mark.parametrize(
    ("username", "password", "roles", "service", "message"),
    [
        ("new", None, ["viewer"], False, "needs a password"),
        ("bob", "short", ["viewer"], False, "at least 8 characters"),
        ("bob smith", "long-enough", ["viewer"], False, "is not valid"),
        ("", "long-enough", ["viewer"], False, "is not valid"),
        ("bob", "long-enough", ["owner"], False, "Unknown role 'owner'"),
        ("ci", None, ["approver"], True, "only the requester role"),
        ("ci", "long-enough", ["requester"], True, "has no password"),
    ],
)
def test_bad_account_input_is_refused(
    settings: Settings,
    username: str,
    password: str | None,
    roles: list[str],
    service: bool,
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        manage_user(settings, None, username, password, roles, service=service)
    assert list_accounts(settings) == []


def test_ten_concurrent_adds_keep_ten_accounts(settings: Settings) -> None:
    manage_user(settings, None, "root", "long-enough-pw", ["admin"])
    admin = resolve_local_actor(settings, "root")

    def add(n: int) -> None:
        manage_user(settings, admin, f"user-{n}", f"password-{n:04d}", ["viewer"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(add, range(10)))
    names = {u.username for u in list_accounts(settings)}
    assert names == {"root"} | {f"user-{n}" for n in range(10)}
    changes = audit.list_events(settings.db_url, audit.AuditFilter(action="account_changed"))
    assert len(changes) == 11
    assert audit.verify(settings).ok


def test_service_account_removal_and_the_last_admin(settings: Settings) -> None:
    manage_user(settings, None, "root", "long-enough-pw", ["admin"])
    root = resolve_local_actor(settings, "root")
    ci = manage_user(settings, root, "ci", None, ["requester"], service=True)
    assert (ci.is_service, ci.password_hash, ci.roles) == (True, None, {"requester"})
    with pytest.raises(InvalidInput, match="ci is a service account"):
        manage_user(settings, root, "ci", "long-enough-pw", ["requester"])

    for change in (
        lambda: remove_user(settings, root, "root"),
        lambda: disable_user(settings, root, "root"),
        lambda: manage_user(settings, root, "root", None, ["approver"]),
    ):
        with pytest.raises(ActionRefused, match="root is the last admin account"):
            change()
    manage_user(settings, root, "dana", "long-enough-pw", ["admin"])
    with pytest.raises(InvalidInput, match="dana is a person's account"):
        manage_user(settings, root, "dana", None, ["requester"], service=True)
    disable_user(settings, root, "dana")
    with pytest.raises(ActionRefused, match="last admin"):
        remove_user(settings, root, "root")
    disable_user(settings, root, "dana", disabled=False)
    remove_user(settings, root, "root")
    assert {u.username for u in list_accounts(settings)} == {"ci", "dana"}
    with pytest.raises(InvalidInput, match="no account 'root'"):
        remove_user(settings, resolve_local_actor(settings, "dana"), "root")
    actions = [e.action for e in audit.list_events(settings.db_url)]
    assert actions.count("account_removed") == 1 and actions.count("account_disabled") == 1

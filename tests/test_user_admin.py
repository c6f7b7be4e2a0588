"""Managing roles is an admin's action: refused to others, recorded in the audit log."""

from pathlib import Path

import pytest

from mlops_core.errors import PermissionDenied
from mlops_core.people.auth import load_users, resolve_cli_actor
from mlops_core.people.user_admin import BOOTSTRAP, manage_user
from mlops_core.stores import audit
from tests.conftest import settings_for


def test_first_account_bootstraps_then_only_admins_manage_roles(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    manage_user(settings, None, "root", "long-enough-pw", ["admin"])
    admin = resolve_cli_actor(settings, "root")
    manage_user(settings, admin, "carol", "another-password", ["requester"])
    carol = resolve_cli_actor(settings, "carol")

    with pytest.raises(PermissionDenied, match="needs the admin role"):
        manage_user(settings, carol, "carol", None, ["requester", "approver"])
    with pytest.raises(PermissionDenied):
        manage_user(settings, None, "mallory", "whatever-pass", ["admin"])
    assert load_users(settings.users_file)["carol"].roles == frozenset({"requester"})

    manage_user(settings, admin, "carol", None, ["requester", "approver"])
    assert load_users(settings.users_file)["carol"].roles == {"requester", "approver"}

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

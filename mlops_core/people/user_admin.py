"""Managing local accounts and their roles: an admin's action, audited like any other."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_core.config import Settings
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.people.auth import LocalUser, add_or_update_user, load_users
from mlops_core.stores import audit
from mlops_core.stores.db import migrate

# Whoever can write the data folder of a fresh install creates its first account.
BOOTSTRAP = Actor(username="data-folder-owner", roles=frozenset({"admin"}), auth_method="cli")


def manage_user(
    settings: Settings,
    actor: Actor | None,
    username: str,
    password: str | None,
    roles: Iterable[str],
    email: str | None = None,
    display_name: str | None = None,
) -> LocalUser:
    """Create an account or change its roles; only an admin may, except for the first one.

    The change is written to the users file, then recorded in the audit log; an account
    change that could not be audited is reported as an error.
    """
    if load_users(settings.users_file):
        require_role(actor, "admin", "manage accounts and roles")
    acting = actor or BOOTSTRAP
    migrate(settings)
    user = add_or_update_user(
        settings.users_file, username, password, roles, email=email, display_name=display_name
    )
    audit.record(
        settings,
        acting,
        "account_changed",
        reason=f"{user.username} now has roles {', '.join(sorted(user.roles)) or 'none'}",
        details={
            "username": user.username,
            "roles": sorted(user.roles),
            "password_changed": password is not None,
        },
    )
    return user

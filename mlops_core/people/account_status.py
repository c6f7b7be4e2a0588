"""What admins see of the accounts: each one's state, sign-in back-off and last sign-in,
and the role grants of the access file. Reading them is an admin's action too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from mlops_core.config import Settings
from mlops_core.identity import Actor
from mlops_core.people.access import AccessConfig, load_access, require_role
from mlops_core.people.accounts import LocalUser, account_actor, list_accounts
from mlops_core.stores.db import SignInThrottle, session_factory, utcnow

SEE = "see accounts and role grants"


@dataclass(frozen=True)
class AccountStatus:
    user: LocalUser
    # The account's roles with the access file's grants added, as a sign-in would get them.
    roles_now: frozenset[str]
    # Sign-in is backing off from some address until then (None: not locked anywhere).
    locked_until: datetime | None = None
    locked_addresses: int = 0


def _locks(settings: Settings, now: datetime) -> dict[str, tuple[datetime, int]]:
    query = (
        select(
            SignInThrottle.username,
            func.max(SignInThrottle.blocked_until),
            func.count(SignInThrottle.id),
        )
        .where(SignInThrottle.known.is_(True), SignInThrottle.blocked_until > now)
        .group_by(SignInThrottle.username)
    )
    with session_factory(settings.db_url)() as session:
        return {name: (until, count) for name, until, count in session.execute(query)}


def account_statuses(
    settings: Settings, actor: Actor | None, now: datetime | None = None
) -> list[AccountStatus]:
    """Every local account with its roles now and lock state, by username."""
    require_role(actor, "admin", SEE)
    locks = _locks(settings, now or utcnow())
    return [
        AccountStatus(
            user,
            account_actor(settings, user, "local").roles,
            *locks.get(user.username, (None, 0)),
        )
        for user in list_accounts(settings)
    ]


def role_grants(settings: Settings, actor: Actor | None) -> AccessConfig:
    """The access file's grants (usernames, e-mails, OIDC groups), as loaded now."""
    require_role(actor, "admin", SEE)
    return load_access(settings.access_file)

"""Local accounts in the panel database: people with a password, and service accounts.

Every change is one statement on one row (an upsert, an update or a delete), so concurrent
changes from several processes or replicas never lose each other's accounts. A fresh
database imports the users file once (`users_file.py`), which keeps that file usable for
provisioning. A service account (for CI) has no password, signs in only with an access
token and holds at most the requester role, whatever the access file says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.identity import ROLES, Actor
from mlops_core.people.access import load_access, roles_for
from mlops_core.people.passwords import hash_password
from mlops_core.people.users_file import USERNAME_PATTERN, FileUser, load_users_file
from mlops_core.stores import audit
from mlops_core.stores.db import Account, AuditEvent, session_factory, upsert, utcnow

SERVICE_ROLES = frozenset({"requester"})
IMPORTED = "accounts_imported"
# For the demo only: one account per role, named after it. The README repeats these.
DEMO_PASSWORDS: Mapping[str, str] = {role: f"{role}-demo" for role in ROLES}


@dataclass(frozen=True)
class LocalUser:
    username: str
    password_hash: str | None
    roles: frozenset[str]
    email: str | None = None
    display_name: str | None = None
    is_service: bool = False
    disabled: bool = False
    last_sign_in_at: datetime | None = None

    @property
    def signs_in_with_password(self) -> bool:
        return self.password_hash is not None and not self.disabled


def normalise_username(username: str) -> str:
    return username.strip().lower()


# Rows are read and returned as plain column mappings, never as ORM objects.
COLUMNS = tuple(Account.__table__.columns)


def _user(row: Mapping[str, Any]) -> LocalUser:
    return LocalUser(
        username=row["username"],
        password_hash=row["password_hash"],
        roles=frozenset(row["roles"] or ()),
        email=row["email"],
        display_name=row["display_name"],
        is_service=bool(row["is_service"]),
        disabled=bool(row["disabled"]),
        last_sign_in_at=row["last_sign_in_at"],
    )


# --- reading ----------------------------------------------------------------------------


def _imported_before(session: Session) -> bool:
    found = select(AuditEvent.id).where(AuditEvent.action == IMPORTED).limit(1)
    return session.scalar(found) is not None


def _import(session: Session, users: Mapping[str, FileUser], source: str) -> None:
    # Re-checked inside the transaction: another process may have imported meanwhile.
    if session.scalar(select(Account.username).limit(1)) is not None or _imported_before(session):
        return
    now = utcnow()
    rows = [
        dict(
            username=u.username,
            password_hash=u.password_hash,
            roles=sorted(u.roles),
            email=u.email,
            display_name=u.display_name,
            is_service=False,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        for u in users.values()
    ]
    session.execute(upsert(session, Account).values(rows).on_conflict_do_nothing())
    audit.append(
        session,
        audit.SYSTEM,
        IMPORTED,
        reason=f"{len(rows)} accounts imported from {source}",
        details={"file": source, "usernames": sorted(users)},
    )


def _store_ready(settings: Settings) -> None:
    """Import the users file into an empty account table, once in the database's life.

    Once imported (or once any account was made), the file is no longer read: an account
    an admin removed is not brought back from it.
    """
    with session_factory(settings.db_url)() as session:
        if session.scalar(select(Account.username).limit(1)) is not None:
            return
    users = load_users_file(settings.users_file)
    if users:
        source = str(settings.users_file)
        audit.atomic(settings, lambda session: _import(session, users, source))


def has_accounts(settings: Settings) -> bool:
    """Whether any account exists; an empty store has nobody to authorise anything."""
    _store_ready(settings)
    with session_factory(settings.db_url)() as session:
        return session.scalar(select(Account.username).limit(1)) is not None


def get_account(settings: Settings, username: str) -> LocalUser | None:
    _store_ready(settings)
    with session_factory(settings.db_url)() as session:
        name = normalise_username(username)[:64]
        row = session.execute(select(*COLUMNS).where(Account.username == name)).mappings().first()
        return _user(row) if row is not None else None


def list_accounts(settings: Settings) -> list[LocalUser]:
    _store_ready(settings)
    with session_factory(settings.db_url)() as session:
        rows = session.execute(select(*COLUMNS).order_by(Account.username)).mappings()
        return [_user(row) for row in rows]


def account_actor(settings: Settings, user: LocalUser, auth_method: str) -> Actor:
    """The account as an actor, with its roles as configured now (account and access file)."""
    roles = roles_for(user.username, user.email, (), user.roles, load_access(settings.access_file))
    if user.is_service:
        # The access file grants by name and wildcard; it must not widen a CI identity.
        roles &= SERVICE_ROLES
    return Actor(
        username=user.username,
        roles=roles,
        email=user.email,
        display_name=user.display_name,
        auth_method=auth_method,
    )


def enabled_admins(session: Session) -> set[str]:
    """People whose own account (not the access file) makes them admin."""
    rows = session.execute(
        select(Account.username, Account.roles).where(
            Account.disabled.is_(False), Account.is_service.is_(False)
        )
    )
    return {name for name, roles in rows if "admin" in (roles or ())}


# --- writing (the caller records the change in the audit log, in the same transaction) ---


def check_account(
    username: str, roles: Iterable[str], email: str | None, service: bool
) -> tuple[str, frozenset[str]]:
    """The normalised username and roles, or InvalidInput naming what is wrong."""
    name = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"Username {username!r} is not valid: use 1-64 lower-case letters, digits "
            "or . _ @ - characters, starting with a letter or digit."
        )
    roles = frozenset(roles)
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise InvalidInput(f"Unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}.")
    if service and not roles <= SERVICE_ROLES:
        raise InvalidInput(
            f"A service account holds only the {', '.join(sorted(SERVICE_ROLES))} role; "
            "people approve."
        )
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        raise InvalidInput(f"E-mail {email!r} is not a valid address.")
    return name, roles


def write_account(
    session: Session,
    name: str,
    password_hash: str | None,
    roles: frozenset[str],
    email: str | None = None,
    display_name: str | None = None,
    service: bool = False,
) -> LocalUser:
    """Create the account or change it in one statement; `password_hash=None` keeps a
    person's password (service accounts never have one). An account keeps its kind."""
    now = utcnow()
    values: dict[str, Any] = dict(
        roles=sorted(roles), email=email or None, display_name=display_name or None, updated_at=now
    )
    if password_hash is not None:
        values["password_hash"] = password_hash
    same_kind = Account.is_service.is_(service)
    if password_hash is None and not service:
        statement = update(Account).where(Account.username == name, same_kind).values(**values)
    else:
        statement = (
            upsert(session, Account)
            .values(username=name, is_service=service, disabled=False, created_at=now, **values)
            .on_conflict_do_update(index_elements=["username"], set_=values, where=same_kind)
        )
    row = session.execute(statement.returning(*COLUMNS)).mappings().first()
    if row is None:
        existing = session.get(Account, name)
        if existing is None:
            raise InvalidInput(f"New user {name!r} needs a password.")
        kind = "a service account" if existing.is_service else "a person's account"
        raise InvalidInput(
            f"{name} is {kind}; an account keeps its kind (remove it and add it again)."
        )
    return _user(row)


def delete_account(session: Session, name: str) -> LocalUser:
    statement = delete(Account).where(Account.username == name).returning(*COLUMNS)
    found = session.execute(statement).mappings().first()
    if found is None:
        raise InvalidInput(f"There is no account {name!r}.")
    return _user(found)


def set_disabled(session: Session, name: str, disabled: bool) -> LocalUser:
    statement = (
        update(Account)
        .where(Account.username == name)
        .values(disabled=disabled, updated_at=utcnow())
        .returning(*COLUMNS)
    )
    found = session.execute(statement).mappings().first()
    if found is None:
        raise InvalidInput(f"There is no account {name!r}.")
    return _user(found)


def set_password(session: Session, name: str, password_hash: str) -> LocalUser:
    """A person's new password; a service account has none to set."""
    statement = (
        update(Account)
        .where(Account.username == name, Account.is_service.is_(False))
        .values(password_hash=password_hash, updated_at=utcnow())
        .returning(*COLUMNS)
    )
    found = session.execute(statement).mappings().first()
    if found is None:
        if session.get(Account, name) is not None:
            raise InvalidInput(f"{name} is a service account; it signs in with access tokens.")
        raise InvalidInput(f"There is no account {name!r}.")
    return _user(found)


def create_demo_accounts(settings: Settings, now: datetime | None = None) -> list[str]:
    """One demo account per role, only into an empty account store; their names.

    Any existing account means someone manages this store: then nothing is added, so an
    account an admin removed or changed stays that way.
    """
    if has_accounts(settings):
        return []
    now = now or utcnow()
    rows = [
        dict(
            username=role,
            password_hash=hash_password(password),
            roles=[role],
            email=None,
            display_name=f"Demo {role}",
            is_service=False,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        for role, password in DEMO_PASSWORDS.items()
    ]
    with session_factory(settings.db_url).begin() as session:
        if session.scalar(select(Account.username).limit(1)) is not None:
            return []
        session.execute(upsert(session, Account).values(rows).on_conflict_do_nothing())
    return list(DEMO_PASSWORDS)

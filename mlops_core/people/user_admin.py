"""Managing accounts and their roles: an admin's action, audited like any other.

Each change and its audit event commit in one transaction. An empty account store has
nobody to ask, so its first account (or the demo's) is made by whoever can write the panel
database, recorded as BOOTSTRAP; from then on only an admin may, and the last admin
account can be neither removed, disabled nor demoted, so the store never falls back to
that bootstrap state.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused, InvalidInput
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.people.accounts import (
    LocalUser,
    check_account,
    delete_account,
    enabled_admins,
    get_account,
    has_accounts,
    normalise_username,
    set_disabled,
    set_password,
    write_account,
)
from mlops_core.people.passwords import MIN_PASSWORD_LENGTH, hash_password
from mlops_core.people.sessions import end_all_sessions
from mlops_core.people.tokens import revoke_all_tokens
from mlops_core.stores import audit
from mlops_core.stores.db import SignInThrottle

# Whoever can write the panel database of a fresh install creates its first account.
BOOTSTRAP = Actor(username="data-folder-owner", roles=frozenset({"admin"}), auth_method="cli")
MANAGE = "manage accounts and roles"


def acting_admin(settings: Settings, actor: Actor | None, action: str) -> Actor:
    """Who performs an admin's action: the actor if admin, BOOTSTRAP on an empty store."""
    if actor is None and not has_accounts(settings):
        return BOOTSTRAP
    require_role(actor, "admin", action)
    assert actor is not None  # require_role refuses nobody
    return actor


def _keep_an_admin(session: Session, name: str) -> None:
    if enabled_admins(session) == {name}:
        raise ActionRefused(f"{name} is the last admin account; make another account admin first.")


def _check_password(password: str | None, service: bool) -> None:
    if service and password is not None:
        raise InvalidInput("A service account has no password; it signs in with an access token.")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def manage_user(
    settings: Settings,
    actor: Actor | None,
    username: str,
    password: str | None,
    roles: Iterable[str],
    email: str | None = None,
    display_name: str | None = None,
    service: bool = False,
) -> LocalUser:
    """Create an account or change its roles; `password=None` keeps a person's password.

    `service=True` makes a service account: no password, at most the requester role.
    """
    name, roles = check_account(username, roles, email, service)
    _check_password(password, service)
    acting = acting_admin(settings, actor, MANAGE)
    password_hash = hash_password(password) if password is not None else None

    def work(session: Session) -> LocalUser:
        if "admin" not in roles:
            _keep_an_admin(session, name)
        user = write_account(session, name, password_hash, roles, email, display_name, service)
        if password_hash is not None:
            # Whoever knew the old password is signed out.
            end_all_sessions(session, name)
        audit.append(
            session,
            acting,
            "account_changed",
            reason=f"{user.username} now has roles {', '.join(sorted(user.roles)) or 'none'}",
            details={
                "username": user.username,
                "roles": sorted(user.roles),
                "password_changed": password is not None,
                "service_account": user.is_service,
            },
        )
        return user

    return audit.atomic(settings, work)


def remove_user(settings: Settings, actor: Actor | None, username: str) -> LocalUser:
    """Delete an account, revoke its access tokens and end its sign-in sessions."""
    acting = acting_admin(settings, actor, MANAGE)
    name = normalise_username(username)

    def work(session: Session) -> LocalUser:
        _keep_an_admin(session, name)
        user = delete_account(session, name)
        # Revoked rather than left to the owner check, so an account made again under the
        # same name does not inherit them.
        revoked = revoke_all_tokens(session, name, acting)
        end_all_sessions(session, name)
        audit.append(
            session,
            acting,
            "account_removed",
            reason=f"{name} removed",
            details={"username": name, "tokens_revoked": revoked},
        )
        return user

    return audit.atomic(settings, work)


def disable_user(
    settings: Settings, actor: Actor | None, username: str, disabled: bool = True
) -> LocalUser:
    """Stop (or allow again) sign-ins and tokens of an account, keeping it and its history."""
    acting = acting_admin(settings, actor, MANAGE)
    name = normalise_username(username)
    action = "account_disabled" if disabled else "account_enabled"

    def work(session: Session) -> LocalUser:
        if disabled:
            _keep_an_admin(session, name)
            end_all_sessions(session, name)
        user = set_disabled(session, name, disabled)
        audit.append(session, acting, action, reason=name, details={"username": name})
        return user

    return audit.atomic(settings, work)


def _clear_back_off(session: Session, name: str) -> int:
    """Forget the account's failed sign-ins from every address; how many addresses waited."""
    return session.execute(delete(SignInThrottle).where(SignInThrottle.username == name)).rowcount


def unlock_user(settings: Settings, actor: Actor | None, username: str) -> LocalUser:
    """End the sign-in back-off of an account from every address, at once."""
    acting = acting_admin(settings, actor, MANAGE)
    name = normalise_username(username)
    user = get_account(settings, name)
    if user is None:
        raise InvalidInput(f"There is no account {name!r}.")

    def work(session: Session) -> LocalUser:
        addresses = _clear_back_off(session, name)
        audit.append(
            session,
            acting,
            "account_unlocked",
            reason=name,
            details={"username": name, "addresses_cleared": addresses},
        )
        return user

    return audit.atomic(settings, work)


def reset_password(
    settings: Settings, actor: Actor | None, username: str, new_password: str
) -> LocalUser:
    """Give a person's account a new password: signs it out everywhere and unlocks it."""
    _check_password(new_password, service=False)
    acting = acting_admin(settings, actor, MANAGE)
    name = normalise_username(username)
    password_hash = hash_password(new_password)

    def work(session: Session) -> LocalUser:
        user = set_password(session, name, password_hash)
        # Whoever knew or guessed the old password is signed out, in every browser.
        end_all_sessions(session, name)
        _clear_back_off(session, name)
        audit.append(session, acting, "password_reset", reason=name, details={"username": name})
        return user

    return audit.atomic(settings, work)

"""Personal access tokens: how the command line and CI prove who is acting.

A token is `mlp_` and 43 random URL-safe characters (256 bits); the prefix lets people and
secret scanners recognise one. Only its SHA-256 is stored, so the database holds nothing
that could be replayed, and the token is shown once, when it is made.

The rules, all enforced here so the panel and the CLI agree:

- People make their own tokens after proving who they are with their password: signed in
  to the panel with a local account, or `tokens create` on the command line. A token never
  makes a token, so a leaked one cannot outlive its expiry or spread. Single sign-on users
  make none: their roles come from the identity provider, which the CLI cannot ask.
- Admins make the tokens of service accounts, which have no password.
- A token's scopes are roles its owner holds when it is made; it then acts with its scopes
  that the owner *still* holds, so a role taken away is gone from every token at once.
- A token expires after at most `MLOPS_TOKEN_MAX_DAYS` days; its owner or an admin can
  revoke it; removing an account revokes its tokens and disabling one suspends them.
- Making and revoking a token are audited; using one is recorded as its last use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, NotFound, PermissionDenied
from mlops_core.identity import ROLES, Actor
from mlops_core.people.access import implied_roles, require_role
from mlops_core.people.accounts import LocalUser, account_actor, get_account, normalise_username
from mlops_core.stores import audit
from mlops_core.stores.db import AccessToken, session_factory, utcnow

TOKEN_PREFIX = "mlp_"
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: everything but the token itself."""

    id: int
    name: str
    owner: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= (now or utcnow()) else "active"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scopes"] = list(self.scopes)
        data["status"] = self.status()
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat(sep=" ", timespec="seconds")
        return data


@dataclass(frozen=True)
class NewToken:
    secret: str  # shown once, never stored
    info: TokenInfo


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: AccessToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        owner=row.username,
        scopes=tuple(row.scopes),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


# --- making tokens ------------------------------------------------------------------------


def signed_in_with_password(actor: Actor) -> bool:
    """Whether the actor proved a local account's password, which making own tokens needs.

    A single sign-on username could name someone else's local account, and a token must
    not make tokens.
    """
    return actor.auth_method == "local"


def _owner(settings: Settings, actor: Actor, owner: str | None) -> LocalUser:
    """The account the new token acts for: the actor's own, or a service account's."""
    name = normalise_username(owner or actor.username)
    user = get_account(settings, name)
    if name == actor.username:
        if not signed_in_with_password(actor) or user is None or not user.signs_in_with_password:
            raise PermissionDenied(
                f"{actor.label} has no local account to make access tokens for; tokens "
                "belong to accounts that sign in with a password (ask an admin for one)."
            )
        return user
    require_role(actor, "admin", "make access tokens for a service account")
    if user is None:
        raise NotFound(f"There is no account {name!r}.")
    if not user.is_service or user.disabled:
        raise PermissionDenied(
            f"Admins make tokens for enabled service accounts only; {name} makes their own."
        )
    return user


def _scopes(user: LocalUser, holds: frozenset[str], asked: Iterable[str] | None) -> tuple[str, ...]:
    chosen = holds if asked is None else frozenset(asked)
    if asked is not None and not chosen:
        raise InvalidInput("Choose at least one role for the token.")
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise InvalidInput(f"Unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}.")
    missing = sorted(chosen - implied_roles(holds))
    if missing:
        raise PermissionDenied(
            f"{user.username} does not hold the {missing[0]} role; a token carries only "
            "roles its owner holds."
        )
    if not chosen:
        raise PermissionDenied(f"{user.username} holds no role, so a token could do nothing.")
    return tuple(role for role in ROLES if role in chosen)


def _lifetime(settings: Settings, days: int | None) -> timedelta:
    days = settings.token_max_days if days is None else days
    if not 1 <= days <= settings.token_max_days:
        raise InvalidInput(
            f"A token lasts 1 to {settings.token_max_days} days (MLOPS_TOKEN_MAX_DAYS), not {days}."
        )
    return timedelta(days=days)


def create_token(
    settings: Settings,
    actor: Actor | None,
    name: str,
    scopes: Iterable[str] | None = None,
    days: int | None = None,
    owner: str | None = None,
    now: datetime | None = None,
) -> NewToken:
    """Make a token for the actor (or, for an admin, a service account); shown only here.

    `scopes=None` gives the owner's current roles; `days=None` the longest lifetime.
    """
    if actor is None:
        raise PermissionDenied("Not signed in: sign in to make an access token.")
    if actor.auth_method == "token":
        raise PermissionDenied(
            "An access token cannot make tokens: sign in with your password (on the panel, "
            "or `tokens create` on the command line)."
        )
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidInput(f"Name the token (1-{MAX_NAME_LENGTH} characters), e.g. 'laptop'.")
    user = _owner(settings, actor, owner)
    chosen = _scopes(user, account_actor(settings, user, "token").roles, scopes)
    lifetime = _lifetime(settings, days)
    now = now or utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)

    def work(session: Session) -> TokenInfo:
        row = AccessToken(
            token_hash=digest(secret),
            name=name,
            username=user.username,
            scopes=list(chosen),
            created_by=actor.username,
            created_at=now,
            expires_at=now + lifetime,
        )
        session.add(row)
        session.flush()
        info = _info(row)
        audit.append(
            session,
            actor,
            "token_created",
            reason=f"access token #{info.id} {name!r} for {user.username}",
            details=info.to_dict(),
        )
        return info

    return NewToken(secret, audit.atomic(settings, work))


# --- using tokens -------------------------------------------------------------------------


def _usable_row(session: Session, secret: str, now: datetime) -> AccessToken:
    if not secret.startswith(TOKEN_PREFIX):
        raise PermissionDenied(
            f"That is not a panel access token (they start with {TOKEN_PREFIX})."
        )
    row = session.scalars(select(AccessToken).where(AccessToken.token_hash == digest(secret)))
    token = row.first()
    if token is None:
        raise PermissionDenied("Unknown access token.")
    if token.revoked_at is not None:
        raise PermissionDenied(
            f"Access token #{token.id} ({token.name}) was revoked on {_day(token.revoked_at)}."
        )
    if token.expires_at <= now:
        raise PermissionDenied(
            f"Access token #{token.id} ({token.name}) expired on {_day(token.expires_at)}; "
            "make a new one."
        )
    return token


def authenticate_token(settings: Settings, secret: str, now: datetime | None = None) -> Actor:
    """The actor a token stands for, with its scopes that the owner still holds."""
    now = now or utcnow()
    with session_factory(settings.db_url).begin() as session:
        token = _usable_row(session, secret.strip(), now)
        token.last_used_at = now
        info = _info(token)
    user = get_account(settings, info.owner)
    if user is None or user.disabled:
        raise PermissionDenied(
            f"Access token #{info.id} ({info.name}) belongs to {info.owner}, whose account "
            "was removed or disabled."
        )
    owner = account_actor(settings, user, "token")
    return dataclasses.replace(owner, roles=frozenset(info.scopes) & implied_roles(owner.roles))


# --- listing and revoking -----------------------------------------------------------------


def list_tokens(settings: Settings, actor: Actor | None, everyone: bool = False) -> list[TokenInfo]:
    """The actor's tokens, newest first; with `everyone`, an admin sees every account's."""
    if actor is None:
        raise PermissionDenied("Not signed in: sign in to list access tokens.")
    query = select(AccessToken).order_by(AccessToken.id.desc())
    if everyone:
        require_role(actor, "admin", "list everyone's access tokens")
    else:
        query = query.where(AccessToken.username == actor.username)
    with session_factory(settings.db_url)() as session:
        return [_info(row) for row in session.scalars(query)]


def revoke_token(
    settings: Settings, actor: Actor | None, token_id: int, now: datetime | None = None
) -> TokenInfo:
    """Revoke a token at once; its owner or an admin may."""
    if actor is None:
        raise PermissionDenied("Not signed in: sign in to revoke an access token.")
    now = now or utcnow()

    def work(session: Session) -> TokenInfo:
        token = session.get(AccessToken, token_id)
        if token is None:
            raise NotFound(f"There is no access token #{token_id}.")
        if token.username != actor.username:
            require_role(actor, "admin", f"revoke access tokens of {token.username}")
        revoked = session.execute(
            update(AccessToken)
            .where(AccessToken.id == token_id, AccessToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=actor.username)
            .returning(AccessToken.id)
        ).first()
        if revoked is None:
            raise InvalidInput(f"Access token #{token_id} is already revoked.")
        session.refresh(token)
        audit.append(
            session,
            actor,
            "token_revoked",
            reason=f"access token #{token_id} {token.name!r} of {token.username}",
            details={"token_id": token_id, "owner": token.username, "name": token.name},
        )
        return _info(token)

    return audit.atomic(settings, work)


def revoke_all_tokens(session: Session, username: str, by: Actor) -> int:
    """Revoke every live token of an account (its removal), in the caller's transaction."""
    result = session.execute(
        update(AccessToken)
        .where(AccessToken.username == username, AccessToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=by.username)
    )
    return result.rowcount

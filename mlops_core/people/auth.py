"""Signing in with a local account's password, with back-off against guessing.

Failed sign-ins are counted per (username, client address) in the panel database, so the
back-off holds across processes and replicas. An attempt is counted *before* its password
is checked, in one atomic statement that also refuses it while the pair is backing off;
parallel guesses therefore queue on that row and at most FREE_FAILURES + 1 of them are
ever checked. Past FREE_FAILURES each failure doubles the wait, up to MAX_DELAY. The wait
is per client address, so someone guessing from one address never locks the account's
owner out from another. A successful sign-in clears its pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, delete, or_, select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.accounts import account_actor, get_account, normalise_username
from mlops_core.people.passwords import decoy_hash, verify_password
from mlops_core.stores.db import Account, SignInThrottle, session_factory, upsert, utcnow

FREE_FAILURES = 3
FIRST_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=15)
# A pair with no failure for this long starts again from zero.
FORGET_AFTER = timedelta(hours=1)
# Unknown usernames are counted like real ones (so back-off does not reveal which exist),
# but only the newest MAX_UNKNOWN_ROWS of them are kept.
MAX_UNKNOWN_ROWS = 10_000
# The client address when there is none: the command line, or a local browser.
NO_ADDRESS = "-"

WRONG_CREDENTIALS = "Wrong username or password."


@dataclass(frozen=True)
class ThrottleKey:
    username: str
    client: str

    @property
    def where(self) -> ColumnElement[bool]:
        return (SignInThrottle.username == self.username) & (SignInThrottle.client == self.client)


def backoff(failures: int) -> timedelta:
    """How long a pair waits after its `failures`-th failure in a row."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES - 1, 20)
    return min(FIRST_DELAY * 2**doublings, MAX_DELAY)


def _count_attempt(session: Session, key: ThrottleKey, known: bool, now: datetime) -> int | None:
    """Count one more failure unless the pair is waiting: the new count, or None when waiting."""
    forgotten = SignInThrottle.last_failure_at < now - FORGET_AFTER
    statement = (
        upsert(session, SignInThrottle)
        .values(
            username=key.username,
            client=key.client,
            known=known,
            failures=1,
            last_failure_at=now,
            blocked_until=now,
        )
        .on_conflict_do_update(
            index_elements=["username", "client"],
            set_={
                "failures": case((forgotten, 1), else_=SignInThrottle.failures + 1),
                "last_failure_at": now,
            },
            where=SignInThrottle.blocked_until <= now,
        )
        .returning(SignInThrottle.failures)
    )
    return session.scalar(statement)


def _prune(session: Session, now: datetime) -> None:
    """Drop pairs nobody failed for FORGET_AFTER, and unknown names beyond the newest cap."""
    unknown = SignInThrottle.known.is_(False)
    newest_kept = (
        select(SignInThrottle.id)
        .where(unknown)
        .order_by(SignInThrottle.id.desc())
        .offset(MAX_UNKNOWN_ROWS)
        .limit(1)
        .scalar_subquery()
    )
    stale = (SignInThrottle.last_failure_at < now - FORGET_AFTER) & (
        SignInThrottle.blocked_until <= now
    )
    # SKIP LOCKED (PostgreSQL): rows another sign-in is counting are left for a later prune,
    # so two prunes never wait on each other.
    doomed = (
        select(SignInThrottle.id)
        .where(or_(stale, unknown & (SignInThrottle.id <= newest_kept)))
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(SignInThrottle).where(SignInThrottle.id.in_(doomed)))


def _reserve(session: Session, key: ThrottleKey, known: bool, now: datetime) -> timedelta | None:
    """Count the attempt as a failure up front; the remaining wait when it is refused."""
    failures = _count_attempt(session, key, known, now)
    if failures is None:
        blocked_until = session.scalar(select(SignInThrottle.blocked_until).where(key.where))
        return blocked_until - now
    session.execute(
        update(SignInThrottle).where(key.where).values(blocked_until=now + backoff(failures))
    )
    if failures == 1:
        _prune(session, now)
    return None


def _waiting_message(username: str, remaining: timedelta) -> str:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    count, unit = (seconds, "second") if seconds < 120 else (math.ceil(seconds / 60), "minute")
    wait = f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"Too many failed sign-ins for {username} from this address; try again in {wait}."


def authenticate(
    settings: Settings,
    username: str,
    password: str,
    client: str | None = None,
    now: datetime | None = None,
) -> Actor:
    """Check a local sign-in and return the actor, or raise PermissionDenied.

    `client` is the address the attempt comes from (None: the command line or a local
    browser). An unknown user, a service account (no password), a disabled account and a
    wrong password all get the same message. `now` is naive UTC, as `db.utcnow()` returns;
    tests pass it to move the clock.
    """
    now = now or utcnow()
    name = normalise_username(username)[:255]
    user = get_account(settings, name)
    usable = user if user is not None and user.signs_in_with_password else None
    key = ThrottleKey(name, (client or NO_ADDRESS)[:64])
    factory = session_factory(settings.db_url)
    with factory.begin() as session:
        remaining = _reserve(session, key, user is not None, now)
    if remaining is not None:
        raise PermissionDenied(_waiting_message(name, remaining))
    stored = usable.password_hash if usable is not None else None
    matches = verify_password(password, stored or decoy_hash())
    if usable is None or not matches:
        raise PermissionDenied(WRONG_CREDENTIALS)
    with factory.begin() as session:
        session.execute(delete(SignInThrottle).where(key.where))
        session.execute(update(Account).where(Account.username == name).values(last_sign_in_at=now))
    return account_actor(settings, usable, "local")


def resolve_local_actor(settings: Settings, username: str) -> Actor:
    """The signed-in local user with roles re-read from the database and access file.

    The UI calls this on every run, so a changed role or a removed or disabled account
    takes effect without waiting for the person to sign out.
    """
    user = get_account(settings, username)
    if user is None or not user.signs_in_with_password:
        raise PermissionDenied(f"{normalise_username(username)!r} has no usable account.")
    return account_actor(settings, user, "local")

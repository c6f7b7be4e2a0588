"""Panel sign-in sessions, kept in the panel database.

Signing in with a password starts a session: a random secret held by the person's
browser (their Streamlit session, and a cookie so that a reload or a new tab stays signed
in), and its SHA-256 here with an expiry MLOPS_SESSION_HOURS away. Every page load looks it
up, so a session ends on every replica at once when it expires, when the person signs out,
and when their password changes or is reset, or their account is removed or disabled.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.auth import resolve_local_actor
from mlops_core.people.tokens import digest
from mlops_core.stores.db import SignInSession, session_factory, utcnow


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.session_hours)


def start_session(settings: Settings, actor: Actor, now: datetime | None = None) -> str:
    """A new session for someone who just signed in; the secret goes to their browser only."""
    now = now or utcnow()
    secret = secrets.token_urlsafe(32)
    with session_factory(settings.db_url).begin() as session:
        # The person's expired sessions are swept out with each new one.
        session.execute(
            delete(SignInSession).where(
                SignInSession.username == actor.username, SignInSession.expires_at <= now
            )
        )
        session.add(
            SignInSession(
                token_hash=digest(secret),
                username=actor.username,
                created_at=now,
                expires_at=now + session_lifetime(settings),
            )
        )
    return secret


def session_actor(settings: Settings, secret: str, now: datetime | None = None) -> Actor | None:
    """Who holds this session, with roles as configured now; None once it has ended."""
    with session_factory(settings.db_url)() as session:
        row = session.get(SignInSession, digest(secret))
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    try:
        return resolve_local_actor(settings, row.username)
    except PermissionDenied:
        return None


def end_session(settings: Settings, secret: str) -> None:
    with session_factory(settings.db_url).begin() as session:
        session.execute(delete(SignInSession).where(SignInSession.token_hash == digest(secret)))


def end_all_sessions(session: Session, username: str) -> None:
    """Sign the account out everywhere, in the caller's transaction."""
    session.execute(delete(SignInSession).where(SignInSession.username == username))

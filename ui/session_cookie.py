"""The sign-in cookie: a local sign-in survives a reload, a pasted link and a new tab.

The browser keeps the secret of the sign-in session (`mlops_core.people.sessions`) in a
cookie and nothing else: no username, no role. A new Streamlit session reads it from the
request that opened its WebSocket (`st.context.cookies`) and the panel database decides
whether it still stands, so a cookie outliving a sign-out, a password reset or its expiry
opens nothing. Streamlit cannot set a cookie on its own responses, so
streamlit-cookies-controller sets and deletes it from the page: it cannot be HttpOnly
(the README says what that means).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st
from streamlit_cookies_controller import CookieController

NAME = "mlops_session"
# Over HTTPS the __Host- prefix makes the browser refuse the cookie when it comes from a
# sibling subdomain or names a Domain, so nobody can plant their own session in the panel.
SECURE_NAME = f"__Host-{NAME}"
# What the page should do with the cookie, kept until the next sign-in or sign-out: the
# component must stay on the page until its frame has run, and reruns are quicker than that.
PENDING_KEY = "session_cookie_pending"
# The component's copy of the browser's cookies, seeded from the request: left unseeded it
# would read them from the page first, at the cost of a round trip and an extra rerun.
JAR_KEY = "session_cookie_jar"
EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)
# secrets.token_urlsafe(32) is 43 characters; a longer value is no secret of ours.
MAX_SECRET_CHARS = 64


def served_over_https() -> bool:
    """Whether the browser reached the panel over HTTPS, directly or through a proxy that
    says so (X-Forwarded-Proto)."""
    forwarded = st.context.headers.get("X-Forwarded-Proto") or ""
    url = st.context.url or ""
    return forwarded.split(",")[0].strip().lower() == "https" or url.startswith("https://")


def _name() -> str:
    return SECURE_NAME if served_over_https() else NAME


def cookie_secret() -> str | None:
    """The sign-in secret the browser sent when this Streamlit session began, if any.

    Anything else in its place (not text, or far longer than a secret) is ignored.
    """
    value = st.context.cookies.get(_name())
    return value if isinstance(value, str) and 0 < len(value) <= MAX_SECRET_CHARS else None


def remember(secret: str, lifetime: timedelta) -> None:
    """Have the page store the secret for `lifetime` (from the next run on)."""
    expires = datetime.now(UTC) + lifetime
    st.session_state[PENDING_KEY] = (secret, expires.replace(microsecond=0), lifetime)


def forget() -> None:
    """Have the page delete the cookie (from the next run on)."""
    st.session_state[PENDING_KEY] = ("", EXPIRED, timedelta(0))


def sync() -> None:
    """Render the component doing what is pending; the same arguments every run keep one
    frame on the page, which sets the cookie once."""
    pending = st.session_state.get(PENDING_KEY)
    if pending is None:
        return
    secret, expires, lifetime = pending
    if JAR_KEY not in st.session_state:
        st.session_state[JAR_KEY] = dict(st.context.cookies)
    CookieController(key=JAR_KEY).set(
        _name(),
        secret,
        path="/",
        expires=expires,
        max_age=int(lifetime.total_seconds()),
        secure=served_over_https() or None,
        same_site="strict",
    )

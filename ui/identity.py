"""Who is using the panel: sign-in, the sidebar identity, and the one place pages ask.

Pages call `current_actor(settings)` and nothing else. Tests set the user by putting an
`Actor` into `st.session_state["actor"]` before running the app.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.identity import Actor
from mlops_core.people.access import actor_from_oidc, load_access, page_refusal
from mlops_core.people.auth import authenticate
from mlops_core.people.sessions import (
    end_session,
    session_actor,
    session_lifetime,
    start_session,
)
from ui import session_cookie
from ui.app_state import ensure_schema
from ui.text import plain

ACTOR_KEY = "actor"
# The secret of the person's sign-in session (mlops_core.people.sessions).
SESSION_KEY = "sign_in_session"
_SIGNED_IN_VIA = {
    "local": "with a local account",
    "oidc": "through single sign-on",
}


def _auth_section() -> Mapping[str, Any] | None:
    """The `[auth]` section of secrets.toml, or None when single sign-on is not configured."""
    if not st.secrets.load_if_toml_exists():
        return None
    return st.secrets.get("auth")


def current_actor(settings: Settings) -> Actor | None:
    """The signed-in actor, or None. Raises MlopsError when the access file is invalid."""
    injected = st.session_state.get(ACTOR_KEY)
    if injected is not None:
        return injected
    if _auth_section() is not None:
        if not st.user.get("is_logged_in"):
            return None
        return actor_from_oidc(st.user.to_dict(), load_access(settings.access_file))
    # A new Streamlit session (a reload, a pasted link, a new tab) takes the browser's cookie.
    secret = st.session_state.get(SESSION_KEY) or session_cookie.cookie_secret()
    if secret is None:
        return None
    actor = session_actor(settings, secret)
    if actor is None:
        # Expired, signed out elsewhere, or the account was removed or its password changed.
        st.session_state.pop(SESSION_KEY, None)
    else:
        st.session_state[SESSION_KEY] = secret
    return actor


def _providers(auth: Mapping[str, Any]) -> list[str | None]:
    # Named providers are [auth.<name>] tables; otherwise the [auth] section is the provider.
    named = [
        name for name, value in auth.items() if isinstance(value, Mapping) and "client_id" in value
    ]
    return named or [None]


def _single_sign_on(auth: Mapping[str, Any]) -> None:
    if importlib.util.find_spec("authlib") is None:
        st.error(
            "Single sign-on is configured in .streamlit/secrets.toml, but the Authlib "
            "package is not installed: pip install 'Authlib>=1.3.2'."
        )
        return
    for provider in _providers(auth):
        label = provider.title() if provider else "single sign-on"
        if st.button(f"Sign in with {label}", key=f"sign_in_{provider or 'default'}"):
            st.login(provider)


def _client_address() -> str | None:
    """The browser's address: sign-in back-off is per account and address, so someone
    guessing elsewhere cannot lock this person out. None where Streamlit knows none (a
    browser on this machine, or a test run)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def _local_sign_in(settings: Settings) -> None:
    with st.form("sign_in"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        actor = authenticate(settings, username, password, client=_client_address())
    except MlopsError as exc:
        st.error(plain(str(exc)))
        return
    secret = start_session(settings, actor)
    st.session_state[SESSION_KEY] = secret
    session_cookie.remember(secret, session_lifetime(settings))
    st.rerun()


def sign_in_page(settings: Settings) -> None:
    """The page shown to someone not signed in: single sign-on or the local form, in a
    narrow column in the middle."""
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        st.title("MLOps control panel")
        st.subheader("Sign in")
        auth = _auth_section()
        if auth is not None:
            _single_sign_on(auth)
        else:
            _local_sign_in(settings)
    # Deletes the cookie after a sign-out in this tab.
    session_cookie.sync()


def sign_out(settings: Settings, actor: Actor) -> None:
    """End the session in the database, so every tab holding it is signed out on its next
    run, and delete this browser's cookie."""
    secret = st.session_state.get(SESSION_KEY)
    if secret is not None:
        end_session(settings, secret)
    st.session_state.clear()
    if secret is not None:
        session_cookie.forget()
    if actor.auth_method == "oidc":
        # Also deletes Streamlit's identity cookie and ends the provider session if it can.
        st.logout()
    st.rerun()


def sidebar_identity(settings: Settings, actor: Actor) -> None:
    """Who is signed in, how, with which roles, and a sign-out button."""
    with st.sidebar:
        st.markdown(f"**{plain(actor.display_name or actor.label)}**")
        via = _SIGNED_IN_VIA.get(actor.auth_method, actor.auth_method)
        st.caption(f"{plain(actor.label)}, signed in {via}")
        st.caption(f"Roles: {', '.join(sorted(actor.roles)) or 'none'}")
        if st.button("Sign out", key="sign_out"):
            sign_out(settings, actor)
        # Stores the cookie after a sign-in in this tab.
        session_cookie.sync()


def not_allowed_page(actor: Actor | None, page: str) -> None:
    """The body shown when a URL targets a page the actor's roles do not open."""
    st.title("Not allowed")
    st.error(f"Not allowed: {plain(page_refusal(actor, page) or '')}")


def no_roles_page(actor: Actor) -> None:
    """The body shown to someone signed in whom configuration grants no role."""
    st.title("No access yet")
    st.warning(
        f"You are signed in as {plain(actor.label)}, but no role is granted to you. "
        "Ask an admin to add you to the access file (access.toml)."
    )


def require_page(settings: Settings, page: str) -> Actor:
    """The guard at the top of every page: the signed-in actor, if their roles open `page`.

    Streamlit serves the files in pages/ on their own until app.py has built the navigation
    once after a restart, so a page must never trust that app.py ran before it: without a
    signed-in actor holding the page's role, it stops here before reading anything.
    """
    ensure_schema(settings)
    try:
        actor = current_actor(settings)
    except MlopsError as exc:
        st.error(plain(str(exc)))
        st.stop()
    refusal = page_refusal(actor, page)
    if refusal is not None:
        st.title("Sign in" if actor is None else "Not allowed")
        st.error(plain(refusal))
        if actor is None:
            st.markdown("[Open the sign-in page](/)")
        st.stop()
    return actor

"""Access tokens in the sidebar: make one for the command line (shown once), list, revoke.

`mlops_core.people.tokens` decides who may make which token and whose tokens one may see
or revoke; this lays out the form and the list.
"""

from __future__ import annotations

import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.identity import ROLES, Actor
from mlops_core.people.access import holds_role, implied_roles
from mlops_core.people.tokens import (
    TokenInfo,
    create_token,
    list_tokens,
    revoke_token,
    signed_in_with_password,
)
from ui.text import plain


def tokens_sidebar(settings: Settings, actor: Actor) -> None:
    with st.sidebar.expander("Access tokens for the CLI"):
        if signed_in_with_password(actor):
            _create_form(settings, actor)
        else:
            st.caption(
                "Access tokens belong to local accounts: ask an admin for one, then sign in "
                "with its password to make tokens."
            )
        _token_list(settings, actor)


def _create_form(settings: Settings, actor: Actor) -> None:
    roles = [role for role in ROLES if role in implied_roles(actor.roles)]
    with st.form("token_form", clear_on_submit=True):
        name = st.text_input("Name", placeholder="laptop", key="token_name")
        scopes = st.multiselect(
            "Roles it may use",
            roles,
            default=[role for role in roles if role in actor.roles],
            key="token_scopes",
        )
        days = st.number_input(
            "Valid for (days)",
            min_value=1,
            max_value=settings.token_max_days,
            value=settings.token_max_days,
            key="token_days",
        )
        submitted = st.form_submit_button("Create token")
    if not submitted:
        return
    try:
        new = create_token(settings, actor, name, scopes=scopes, days=int(days))
    except MlopsError as exc:
        st.error(plain(str(exc)))
        return
    # Shown in this run only: the next one no longer has it, and the panel stores only
    # its hash.
    st.success(f"Token #{new.info.id} created. Copy it now; it is not shown again.")
    st.code(new.secret, language=None)
    st.caption("Use it as MLOPS_TOKEN or in a file passed with --token-file.")


def _describe(token: TokenInfo, actor: Actor) -> str:
    owner = "" if token.owner == actor.username else f" of {token.owner}"
    used = f"{token.last_used_at:%Y-%m-%d}" if token.last_used_at else "never"
    return (
        f"**#{token.id} {plain(token.name)}**{plain(owner)}  \n"
        f"{', '.join(token.scopes)} · expires {token.expires_at:%Y-%m-%d} · last used {used}"
    )


def _token_list(settings: Settings, actor: Actor) -> None:
    try:
        tokens = list_tokens(settings, actor, everyone=holds_role(actor, "admin"))
    except MlopsError as exc:
        st.error(plain(str(exc)))
        return
    active = [token for token in tokens if token.status() == "active"]
    if not active:
        st.caption("No active tokens.")
    for token in active:
        st.markdown(_describe(token, actor))
        if st.button("Revoke", key=f"revoke_token_{token.id}"):
            try:
                revoke_token(settings, actor, token.id)
            except MlopsError as exc:
                st.error(plain(str(exc)))
            else:
                st.rerun()

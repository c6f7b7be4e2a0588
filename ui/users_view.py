"""The users page's parts: the account table, the access file's grants, and the admin's
actions. `mlops_core.people` checks the admin role again and audits every change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.identity import ROLES, Actor
from mlops_core.people.access import EVERYONE, AccessConfig
from mlops_core.people.account_status import AccountStatus
from mlops_core.people.accounts import SERVICE_ROLES, LocalUser
from mlops_core.people.user_admin import (
    disable_user,
    manage_user,
    remove_user,
    reset_password,
    unlock_user,
)
from ui.text import plain

# What the last action did, shown once after the rerun that brings the table up to date.
DONE_KEY = "users_done"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def show_done() -> None:
    done = st.session_state.pop(DONE_KEY, None)
    if done:
        st.success(plain(done), icon=":material/check_circle:")


def _act(action: Callable[[], object], done: str) -> None:
    """Run one admin action; refused or invalid input is shown, never a trace."""
    try:
        action()
    except MlopsError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        return
    st.session_state[DONE_KEY] = done
    st.rerun()


def accounts_table(statuses: list[AccountStatus]) -> None:
    if not statuses:
        st.info("No local accounts yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Username": s.user.username,
                    "Name": s.user.display_name or "",
                    "E-mail": s.user.email or "",
                    "Account roles": ", ".join(sorted(s.user.roles)),
                    "Roles now": ", ".join(sorted(s.roles_now)),
                    "Service account": s.user.is_service,
                    "Disabled": s.user.disabled,
                    "Locked until": _when(s.locked_until),
                    "Last sign-in": _when(s.user.last_sign_in_at),
                }
                for s in statuses
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Roles now adds the access file's grants to the account's own. Locked: sign-in "
        "is backing off after failed attempts, from at least one address."
    )


def grants_section(access: AccessConfig, source: str) -> None:
    """The access file's grants, read-only: it is edited as a file, not here."""
    st.subheader("Role grants in the access file")
    if not access.members and not access.groups:
        st.info(f"{plain(source)} grants no roles: roles come from the accounts alone.")
        return
    st.caption(
        f"From {plain(source)}. Entries with an @ match a verified e-mail, others a username; "
        f"{EVERYONE} is everyone signed in."
    )
    members = [
        {"Role": role, "Usernames and e-mails": ", ".join(sorted(names))}
        for role, names in sorted(access.members.items())
    ]
    groups = [
        {"OIDC group": group, "Roles": ", ".join(sorted(roles))}
        for group, roles in sorted(access.groups.items())
    ]
    if members:
        st.dataframe(pd.DataFrame(members), hide_index=True, width="stretch")
    if groups:
        st.caption(f"Groups are read from the {plain(access.groups_claim)} claim.")
        st.dataframe(pd.DataFrame(groups), hide_index=True, width="stretch")


def add_account_form(settings: Settings, actor: Actor) -> None:
    with st.form("add_account", clear_on_submit=True):
        username = st.text_input("Username", key="add_username")
        roles = st.multiselect("Roles", ROLES, key="add_roles")
        email = st.text_input("E-mail (optional)", key="add_email")
        name = st.text_input("Display name (optional)", key="add_name")
        service = st.checkbox(
            "Service account (for CI: no password, requester only, signs in with a token)",
            key="add_service",
        )
        password = st.text_input(
            "Password (not for a service account)", type="password", key="add_password"
        )
        submitted = st.form_submit_button("Add account")
    if submitted:
        _act(
            lambda: manage_user(
                settings,
                actor,
                username,
                None if service else password,
                roles,
                email=email or None,
                display_name=name or None,
                service=service,
            ),
            f"Added {username.strip().lower()}.",
        )


def _roles_form(settings: Settings, actor: Actor, user: LocalUser) -> None:
    choices = sorted(SERVICE_ROLES) if user.is_service else list(ROLES)
    with st.form(f"roles_{user.username}"):
        roles = st.multiselect(
            "Roles", choices, default=sorted(user.roles), key=f"roles_of_{user.username}"
        )
        submitted = st.form_submit_button("Save roles")
    if submitted:
        _act(
            lambda: manage_user(
                settings,
                actor,
                user.username,
                None,
                roles,
                email=user.email,
                display_name=user.display_name,
                service=user.is_service,
            ),
            f"{user.username} now has roles {', '.join(sorted(roles)) or 'none'}.",
        )


def _reset_form(settings: Settings, actor: Actor, user: LocalUser) -> None:
    with st.form(f"reset_{user.username}", clear_on_submit=True):
        first = st.text_input("New password", type="password", key=f"reset_{user.username}_1")
        again = st.text_input("Again", type="password", key=f"reset_{user.username}_2")
        submitted = st.form_submit_button("Reset password")
    if not submitted:
        return
    if first != again:
        st.error("The two passwords differ; nothing was changed.")
        return
    _act(
        lambda: reset_password(settings, actor, user.username, first),
        f"New password set for {user.username}; their sign-in sessions have ended.",
    )


def _state_buttons(settings: Settings, actor: Actor, status: AccountStatus) -> None:
    user = status.user
    disable, unlock, _ = st.columns([1, 1, 4])
    verb = "Enable" if user.disabled else "Disable"
    if disable.button(verb, key=f"disable_{user.username}"):
        _act(
            lambda: disable_user(settings, actor, user.username, not user.disabled),
            f"{verb}d {user.username}.",
        )
    if unlock.button(
        "Unlock",
        key=f"unlock_{user.username}",
        disabled=status.locked_until is None,
        help="End the sign-in back-off from every address.",
    ):
        _act(lambda: unlock_user(settings, actor, user.username), f"Unlocked {user.username}.")


def _remove(settings: Settings, actor: Actor, user: LocalUser) -> None:
    sure = st.checkbox(
        f"Remove {user.username}: revokes their tokens and ends their sessions",
        key=f"remove_sure_{user.username}",
    )
    if st.button("Remove account", key=f"remove_{user.username}", disabled=not sure):
        _act(lambda: remove_user(settings, actor, user.username), f"Removed {user.username}.")


def account_actions(settings: Settings, actor: Actor, statuses: list[AccountStatus]) -> None:
    """The actions on one account the admin picks."""
    if not statuses:
        return
    by_name = {s.user.username: s for s in statuses}
    name = st.selectbox("Account", list(by_name), key="users_account")
    status = by_name[name]
    user = status.user
    if status.locked_until is not None:
        st.warning(
            f"{plain(name)} is locked until {_when(status.locked_until)} from "
            f"{status.locked_addresses} address(es).",
            icon=":material/lock:",
        )
    _roles_form(settings, actor, user)
    _state_buttons(settings, actor, status)
    if not user.is_service:
        _reset_form(settings, actor, user)
    _remove(settings, actor, user)

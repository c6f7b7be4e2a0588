"""Users and roles (admins only): local accounts and their state, the access file's grants,
and the admin's actions on accounts, each audited by the core."""

import streamlit as st

from mlops_core.people.account_status import account_statuses, role_grants
from ui.app_state import or_stop, settings
from ui.identity import require_page
from ui.users_view import (
    account_actions,
    accounts_table,
    add_account_form,
    grants_section,
    show_done,
)

current = settings()
actor = require_page(current, "users")

st.title("Users and roles")
st.caption(
    "Local accounts sign in with a password or, for CI, a token. People signing in through "
    "single sign-on have no account here: the access file grants their roles."
)
show_done()
statuses = or_stop(account_statuses, current, actor)
accounts_table(statuses)

manage, add = st.tabs(["Manage an account", "Add an account"])
with manage:
    account_actions(current, actor, statuses)
with add:
    add_account_form(current, actor)

grants_section(or_stop(role_grants, current, actor), str(current.access_file))

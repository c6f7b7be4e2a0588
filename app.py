"""Entry point: settings, schema, who is signed in, and the pages their roles open.

Every page lays out what `mlops_core` returns; the core enforces every rule again.
"""

from functools import partial

import streamlit as st

from ui.app_state import ensure_schema, or_stop, refresh_control, settings, warm_heavy_imports
from ui.identity import current_actor, no_roles_page, sidebar_identity, sign_in_page
from ui.navigation import build_navigation, sign_in_navigation
from ui.tokens_view import tokens_sidebar

st.set_page_config(page_title="MLOps control panel", page_icon=":material/shield:", layout="wide")

current = settings()
ensure_schema(current)
warm_heavy_imports()
actor = or_stop(current_actor, current)

if actor is None:
    # st.navigation must run on every path, or Streamlit would list pages/ on its own.
    st.navigation(sign_in_navigation(partial(sign_in_page, current))).run()
    st.stop()

pages = build_navigation(actor)
if not any(page.visibility == "visible" for page in pages):
    st.navigation([st.Page(partial(no_roles_page, actor), title="No access")]).run()
    st.stop()

navigation = st.navigation(pages)
sidebar_identity(current, actor)
tokens_sidebar(current, actor)
refresh_control()
navigation.run()

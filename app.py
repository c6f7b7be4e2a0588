"""Entry point: settings, schema, who is signed in, and the pages their roles open.

Every page lays out what `mlops_core` returns; the core enforces every rule again.
"""

from functools import partial

import streamlit as st

from ui.app_state import (
    ensure_schema,
    or_stop,
    refresh_control,
    script_run,
    settings,
    warm_heavy_imports,
)
from ui.identity import current_actor, no_roles_page, sidebar_identity, sign_in_page
from ui.navigation import build_navigation, sign_in_navigation
from ui.tokens_view import tokens_sidebar

st.set_page_config(page_title="MLOps control panel", page_icon=":material/shield:", layout="wide")


def main() -> None:
    current = settings()
    ensure_schema(current)
    actor = or_stop(current_actor, current)

    if actor is None:
        # st.navigation must run on every path, or Streamlit would list pages/ on its own.
        st.navigation(sign_in_navigation(partial(sign_in_page, current))).run()
        return

    pages = build_navigation(actor)
    if not any(page.visibility == "visible" for page in pages):
        st.navigation([st.Page(partial(no_roles_page, actor), title="No access")]).run()
        return

    navigation = st.navigation(pages)
    sidebar_identity(current, actor)
    tokens_sidebar(current, actor)
    refresh_control()
    navigation.run()


warm_heavy_imports()
# Background warm-up waits for a quiet server: each run is marked while it lasts.
with script_run():
    main()

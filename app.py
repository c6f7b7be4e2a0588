"""Entry point: settings, schema, navigation. Every page lays out what `mlops_core` returns."""

import streamlit as st

from ui.app_state import ensure_schema, refresh_control, settings

st.set_page_config(page_title="MLOps control panel", page_icon="🛡️", layout="wide")

current = settings()
ensure_schema(current)

pages = [
    st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
]
navigation = st.navigation(pages)
refresh_control()
navigation.run()

"""A one-element app for the browser test: shows the report in REPORT_FILE with the panel's
own renderer, next to a marker the report must not be able to read or change."""

import os
from pathlib import Path

import streamlit as st

from ui.reports import show_report

st.title("Report frame")
st.text("panel-secret-marker")
show_report(Path(os.environ["REPORT_FILE"]).read_text())

"""Overview: every registered model, its champion, and what needs attention."""

import pandas as pd
import streamlit as st

from ui.app_state import cached_overview, or_stop, settings

st.title("Overview")
st.caption(
    "Every registered model with the version behind its champion alias. "
    "Metrics come from the champion's training run in MLflow."
)

current = settings()
entries = or_stop(cached_overview, current.tracking_uri)
if not entries:
    st.info(
        "No registered models in the tracking store yet. "
        "Run `python -m mlops_core demo` (or `make run`) to load the demo scenario."
    )
    st.stop()

rows = pd.DataFrame(
    [
        {
            "model": e.name,
            "champion": f"v{e.champion_version}" if e.champion_version else "none",
            e.key_metric: e.key_metric_value,
            "versions": e.n_versions,
            "champion changed": e.champion_changed_at,
            "description": e.description,
        }
        for e in entries
    ]
)
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={
        "roc_auc": st.column_config.NumberColumn("champion ROC AUC", format="%.4f"),
        "champion changed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)
without_champion = [e.name for e in entries if e.champion_version is None]
if without_champion:
    st.warning("No champion alias set for: " + ", ".join(without_champion))

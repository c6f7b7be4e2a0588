"""Audit log: every workflow event, filterable, with the hash chain's status and a CSV export."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from mlops_core.stores import audit
from ui.app_state import or_stop, settings
from ui.identity import require_page
from ui.text import plain

current = settings()
require_page(current, "audit")

ANY = "(any)"
# The table shows the newest events; the CSV export has them all.
SHOWN = 1000

st.title("Audit log")
st.caption(
    "Append-only and hash-chained: each event carries the hash of the one before it, keyed "
    "with a secret kept outside the database, so an edited, inserted or deleted event breaks "
    "the chain from that point on."
)

status = or_stop(audit.verify, current)
if status.ok:
    st.success(plain(status.summary))
else:
    st.error(plain(status.summary))

known = or_stop(audit.distinct_values, current.db_url)
# The date range needs room for its "YYYY/MM/DD – YYYY/MM/DD" placeholder.
model_col, actor_col, action_col, dates_col = st.columns([1, 1, 1, 1.6])
model = model_col.selectbox("Model", [ANY, *known["model"]], key="audit_model")
actor = actor_col.selectbox("Actor", [ANY, *known["actor"]], key="audit_actor")
action = action_col.selectbox("Action", [ANY, *known["action"]], key="audit_action")
dates = dates_col.date_input(
    "Dates (UTC)", value=(), help="Pick a first and a last day.", key="audit_dates"
)
since, until = (dates[0], dates[-1]) if dates else (None, None)
filters = audit.AuditFilter(
    model=None if model == ANY else model,
    actor=None if actor == ANY else actor,
    action=None if action == ANY else action,
    since=since,
    until=until,
)

events = or_stop(audit.list_events, current.db_url, replace(filters, limit=SHOWN))
if not events:
    st.info("No audit events match these filters.")
    st.stop()

# The hash and the details (JSON of any length) are shown for the event picked in the
# table: as columns they push the rest of the table out of view.
picked = st.dataframe(
    pd.DataFrame(
        [
            {
                "#": e.id,
                "when (UTC)": e.created_at,
                "actor": e.actor,
                "via": e.actor_via,
                "action": e.action,
                "model": e.model_name,
                "version": e.version,
                "request": e.request_id,
                "reason": e.reason,
            }
            for e in events
        ]
    ),
    hide_index=True,
    width="stretch",
    # An event without a model, version or reason shows an empty cell, not "None".
    placeholder="",
    column_config={
        "when (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "reason": st.column_config.TextColumn(width="medium"),
    },
    on_select="rerun",
    selection_mode="single-row",
    key="audit_events",
)
st.caption(f"{len(events)} events, newest first (at most {SHOWN}; the export has all).")
st.download_button(
    "Export as CSV",
    or_stop(audit.export_csv, current.db_url, filters),
    file_name="audit-log.csv",
    mime="text/csv",
)

rows = picked.selection.rows
if not rows:
    st.caption("Pick an event in the table to see its details and hash.")
else:
    event = events[rows[0]]
    st.subheader(plain(f"Event #{event.id}: {event.action}"))
    st.caption(plain(f"hash {event.hash}, after {event.prev_hash}"))
    st.json(event.details, expanded=2)

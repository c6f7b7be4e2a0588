"""System: the worker's jobs (last and next run), recent runs, and the notification
delivery log, where admins can send a delivery again."""

import pandas as pd
import streamlit as st

from mlops_core.people.access import holds_role
from mlops_core.stores import deliveries, job_runs
from mlops_core.worker.jobs import JOBS
from mlops_core.worker.status import job_statuses, resend
from ui.app_state import or_stop, settings
from ui.identity import require_page
from ui.text import plain

current = settings()
actor = require_page(current, "system")

SHOWN_RUNS = 50
SHOWN_DELIVERIES = 200

st.title("System")
st.caption(
    plain(
        "The worker (python -m mlops_core worker, started by make run) runs these jobs on the "
        "schedule in the policy's [schedule] table, each once per slot however many workers "
        "run, and delivers notifications from the outbox."
    )
)

statuses = or_stop(job_statuses, current, JOBS)
if not any(s.last_run for s in statuses):
    st.warning("No job has run yet: is a worker running against this panel database?")
st.subheader("Jobs")
st.dataframe(
    pd.DataFrame(
        [
            {
                "job": s.name,
                "what": s.description,
                "every": s.every,
                "last started (UTC)": s.last_run.started_at if s.last_run else None,
                "outcome": s.last_run.outcome if s.last_run else None,
                "attempt": s.last_run.attempt if s.last_run else None,
                "result": (s.last_run.error or s.last_run.summary) if s.last_run else None,
                "next due (UTC)": s.next_due,
            }
            for s in statuses
        ]
    ),
    hide_index=True,
    placeholder="",
    key="jobs",
)

st.subheader("Recent runs")
runs = or_stop(job_runs.recent_runs, current.db_url, SHOWN_RUNS)
st.dataframe(
    pd.DataFrame(
        [
            {
                "job": r.job,
                "slot (UTC)": r.slot,
                "attempt": r.attempt,
                "worker": r.worker,
                "started": r.started_at,
                "finished": r.finished_at,
                "outcome": r.outcome,
                "result": r.error or r.summary,
            }
            for r in runs
        ],
        columns=[
            "job",
            "slot (UTC)",
            "attempt",
            "worker",
            "started",
            "finished",
            "outcome",
            "result",
        ],
    ),
    hide_index=True,
    placeholder="",
    key="runs",
)

st.subheader("Notification deliveries")
log = or_stop(deliveries.delivery_log, current.db_url, SHOWN_DELIVERIES)
if not log:
    st.info(
        plain(
            "Nothing delivered yet. Channels (webhook, Slack, e-mail) are configured in "
            "notifications.toml in the data folder (MLOPS_NOTIFICATIONS_FILE)."
        )
    )
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "#": d.id,
                "event": d.event_type,
                "channel": d.channel,
                "status": d.status,
                "attempts": d.attempts,
                "queued (UTC)": d.created_at,
                "delivered": d.delivered_at,
                "next attempt": d.next_attempt_at,
                "last error": d.last_error,
                "model": d.model,
                "version": d.version,
                "request": d.request_id,
                "idempotency key": d.idempotency_key,
            }
            for d in log
        ]
    ),
    hide_index=True,
    placeholder="",
    key="deliveries",
)

chosen = st.selectbox(
    "Attempts of delivery",
    [d.id for d in log],
    format_func=lambda i: plain(f"#{i}"),
    key="delivery",
)
attempts = or_stop(deliveries.attempts_of, current.db_url, chosen)
st.dataframe(
    pd.DataFrame(
        [
            {
                "when (UTC)": a.attempted_at,
                "worker": a.worker,
                "ok": a.ok,
                "HTTP status": a.status_code,
                "error": a.error,
            }
            for a in attempts
        ],
        columns=["when (UTC)", "worker", "ok", "HTTP status", "error"],
    ),
    hide_index=True,
    placeholder="",
    key="attempts",
)
if holds_role(actor, "admin") and st.button(f"Send delivery #{chosen} again", key="resend"):
    or_stop(resend, current, actor, chosen)
    st.success(f"Delivery #{chosen} is queued: the worker sends it within seconds.")

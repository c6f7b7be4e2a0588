"""Approvals: the queue of promotion requests, their evidence, decisions and rollbacks."""

import streamlit as st

from mlops_core.governance.decision_record import build_record
from mlops_core.governance.gates import evaluate_gates
from mlops_core.governance.promotion.rollback import plan_rollback
from mlops_core.governance.promotion.state import (
    MAX_TEXT,
    RequestView,
    list_requests,
    open_requests,
)
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.people.access import holds_role
from mlops_core.policy import describe_target, load_policy
from ui import approvals_actions as actions
from ui import approvals_views as views
from ui.app_state import or_stop, registry, settings
from ui.checks_view import render_checks
from ui.identity import require_page
from ui.text import plain

current = settings()
actor = require_page(current, "approvals")

NOW_KEY = "approvals_gates_now"
# Set when a request was just made: the next run opens it in the queue.
FOCUS_KEY = "approvals_focus"
QUEUE, HISTORY, REQUEST, ROLLBACK = "Queue", "History", "Request a promotion", "Roll back"

if FOCUS_KEY in st.session_state:
    # Widgets take a new value only before they are drawn, so this runs first.
    st.session_state["approvals_tab"] = QUEUE
    st.session_state["queue_pick"] = st.session_state.pop(FOCUS_KEY)

st.title("Approvals")
st.caption(
    "Promotion requests move a model's alias or stage (the target its policy names) to a new "
    "version once another person approves. Gates are checked at request time and again at "
    "each decision."
)

mlflow = registry(current.tracking_uri)
actions.show_flash()


def request_detail(view: RequestView) -> None:
    """Everything about one request: who and why, evidence side by side, actions, record."""
    views.request_header(view)
    actions.action_buttons(current, actor, view)
    now = st.session_state.get(NOW_KEY, {}).get(view.id)
    if st.button("Evaluate the gates now", key=f"gates_now_{view.id}"):
        report = or_stop(evaluate_gates, current, mlflow, view.model_name, view.version)
        st.session_state.setdefault(NOW_KEY, {})[view.id] = now = report.results
    record = or_stop(build_record, current, mlflow, view.id)
    latest = views.latest_gates(view, now)
    # Full width, one after the other: side by side, half a page clipped their columns.
    views.metrics_table(record)
    views.fairness_summary(latest)
    views.drift_summary(latest)
    views.live_summary(latest)
    checks_policy = or_stop(load_policy, current.policy_file).for_model(view.model_name).checks
    render_checks(
        current,
        actor,
        view.model_name,
        view.version,
        checks_policy.max_latency_p99_ms if checks_policy else None,
        key=f"checks_{view.id}",
    )
    st.markdown("**Gates**")
    moments = {"at request": view.gates_at_request}
    for decision in view.decisions:
        moments[f"{decision.actor} ({decision.verdict})"] = decision.gates
    if now is not None:
        moments["now"] = now
    st.dataframe(views.gates_side_by_side(moments), hide_index=True, width="stretch")
    with st.expander("Gate details (reasons and evidence)"):
        st.dataframe(views.gates_frame(latest), hide_index=True, width="stretch")
    st.markdown("**Decisions**")
    views.decisions_list(view)
    views.record_downloads(record)


def pick_request(requests: list[RequestView], key: str) -> None:
    if not requests:
        return
    by_label = {views.request_label(r): r for r in requests}
    chosen = st.selectbox("Request", list(by_label), key=key)
    if chosen is not None:
        with st.container(border=True):
            request_detail(by_label[chosen])


# Only the open tab is drawn: two of them show a request's whole evidence, and drawing
# every tab on each rerun (after an approval, too) doubled what a click costs.
queue, history, new_request, rollback = st.tabs(
    [QUEUE, HISTORY, REQUEST, ROLLBACK], key="approvals_tab", on_change="rerun"
)

if queue.open:
    with queue:
        open_ones = or_stop(open_requests, current)
        if not open_ones:
            st.info("No open promotion requests.")
        else:
            views.requests_table(open_ones)
            pick_request(open_ones, "queue_pick")

if history.open:
    with history:
        everything = or_stop(list_requests, current)
        closed = [r for r in everything if not r.is_open]
        if not closed:
            st.info("No decided requests yet.")
        else:
            views.requests_table(closed)
            st.markdown("**Decisions**")
            st.dataframe(
                views.decisions_history(everything),
                hide_index=True,
                width="stretch",
                column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
            )
            pick_request(closed, "history_pick")

if new_request.open:
    with new_request:
        if not holds_role(actor, "requester"):
            st.info("Requesting a promotion needs the requester role.")
        else:
            names = or_stop(mlflow.model_names)
            model = st.selectbox("Model", names, key="request_model")
            policy = or_stop(load_policy, current.policy_file)
            target = policy.serving_target(model) if model else None
            if model and target is None:
                # Refused by the core too; said before anyone fills in the form.
                st.warning(
                    plain(
                        f"No policy names where {model} is promoted to, so it cannot be "
                        f"requested. {policy.missing_entry_help(model)}"
                    )
                )
            elif model:
                st.caption(plain(f"A promotion moves the {describe_target(target)} of {model}."))
                versions = or_stop(mlflow.list_versions, model)
                labels = {
                    f"v{v.version}" + (f" [{', '.join(v.aliases)}]" if v.aliases else ""): v.version
                    for v in versions
                }
                with st.form("request_form"):
                    version = st.selectbox("Version", list(labels), key="request_version")
                    reason = st.text_area(
                        "Why promote it? (required)", key="request_reason", max_chars=MAX_TEXT
                    )
                    submitted = st.form_submit_button("Request promotion", type="primary")
                if submitted and version:
                    with st.spinner("Evaluating the gates…"):
                        created = or_stop(
                            request_promotion,
                            current,
                            mlflow,
                            actor,
                            model,
                            labels[version],
                            reason,
                        )
                    actions.flash(
                        "success",
                        f"Request #{created.id} created for {model} v{created.version}: "
                        f"gates {created.gate_summary}. It is open below, in the queue.",
                    )
                    st.session_state[FOCUS_KEY] = views.request_label(created)
                    st.rerun()

if rollback.open:
    with rollback:
        if not holds_role(actor, "approver"):
            st.info("Rolling back needs the approver role.")
        else:
            model = st.selectbox("Model", or_stop(mlflow.model_names), key="rollback_model")
            if model:
                plan = or_stop(plan_rollback, current, mlflow, model)
                if plan.refusal:
                    st.info(plain(plan.refusal))
                else:
                    st.text(
                        f"The {describe_target(plan.alias)} points at v{plan.current_version}, "
                        "set by request "
                        f"#{plan.request.id}. A rollback moves it back to v{plan.target_version}."
                    )
                    actions.rollback_button(plan)

# Last, so that a button clicked in this run opens its dialog in this run.
actions.open_dialog(current, mlflow, actor)

"""The approvals page's actions: buttons, a confirmation dialog each, and the outcome.

Buttons appear only for actions `allowed_actions` says the user may take; the
core checks everything again when the action runs. The open dialog is remembered in the
session, so it survives reruns until it is confirmed or dismissed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.governance.gates import evaluate_gates
from mlops_core.governance.promotion.apply import retry_apply
from mlops_core.governance.promotion.decide import (
    allowed_actions,
    approve,
    cancel,
    decision_refusal,
    reject,
)
from mlops_core.governance.promotion.rollback import RollbackPlan, plan_rollback, rollback
from mlops_core.governance.promotion.state import (
    APPLYING,
    APPROVED,
    MAX_TEXT,
    PENDING,
    STALE,
    RequestView,
    describe,
    get_request,
)
from mlops_core.identity import Actor
from mlops_core.people.access import holds_role
from mlops_core.policy import describe_target
from mlops_core.stores.registry import Registry
from ui.text import plain

PENDING_KEY = "approvals_pending_action"
GATES_NOW_KEY = "approvals_dialog_gates"
FLASH_KEY = "approvals_flash"
LABELS = {
    "approve": "Approve",
    "reject": "Reject",
    "override": "Approve with override",
    "cancel": "Cancel request",
    "retry_apply": "Retry apply",
}


@dataclass(frozen=True)
class PendingAction:
    action: str
    request_id: int | None = None
    model: str | None = None


def flash(kind: str, message: str) -> None:
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    """The outcome of the last action, shown once after the rerun it triggered."""
    kind, message = st.session_state.pop(FLASH_KEY, (None, None))
    if kind:
        getattr(st, kind)(plain(message))


def _close() -> None:
    st.session_state.pop(PENDING_KEY, None)
    st.session_state.pop(GATES_NOW_KEY, None)


OUTCOME_KINDS = {
    PENDING: "info",
    APPROVED: "error",  # still approved after acting: the apply failed
    APPLYING: "warning",  # the alias moved (or may have), the apply did not finish
    STALE: "warning",
}


def outcome(view: RequestView) -> tuple[str, str]:
    """How to tell the user what became of the request: a message kind and its text."""
    if view.status == APPROVED and not view.needs_retry:
        return "success", describe(view)  # waiting for its staged rollout
    return OUTCOME_KINDS.get(view.status, "success"), describe(view)


def _run(call: Callable[[], RequestView]) -> None:
    """Run the core action; its refusal is shown in the dialog, its outcome after rerun."""
    try:
        view = call()
    except MlopsError as exc:
        st.error(plain(str(exc)))
        return
    _close()
    flash(*outcome(view))
    st.rerun()


def action_buttons(settings: Settings, actor: Actor, view: RequestView) -> None:
    allowed = allowed_actions(settings, actor, view)
    why_not = decision_refusal(actor, view)
    if view.status == PENDING and why_not and holds_role(actor, "approver"):
        # An approver who sees no Approve button is told why (their own request, say).
        st.caption(plain(f"No Approve or Reject here: {why_not}"))
    if not allowed:
        return
    with st.container(horizontal=True):
        for action in allowed:
            if st.button(
                LABELS[action],
                key=f"{action}_{view.id}",
                type="primary" if action == "approve" else "secondary",
            ):
                st.session_state[PENDING_KEY] = PendingAction(action, request_id=view.id)


def rollback_button(plan: RollbackPlan) -> None:
    if st.button(f"Roll back {plan.model} to v{plan.target_version}", key=f"rollback_{plan.model}"):
        st.session_state[PENDING_KEY] = PendingAction("rollback", model=plan.model)


@st.dialog("Confirm", on_dismiss=_close, width="large")
def _confirm(settings: Settings, registry: Registry, actor: Actor, pending: PendingAction) -> None:
    if pending.action == "rollback":
        _confirm_rollback(settings, registry, actor, pending)
        return
    view = get_request(settings, pending.request_id)
    target = plain(f"#{view.id}: {view.model_name} v{view.version}")
    st.markdown(f"**{LABELS[pending.action]}** request {target}")
    justification = None
    if pending.action in ("approve", "override", "reject"):
        if pending.action != "reject":
            _blocking_gates(settings, registry, view, pending.action)
        st.caption("The gates are evaluated again when you confirm.")
        comment = st.text_area("Comment (required)", key="action_comment", max_chars=MAX_TEXT)
        if pending.action == "override":
            st.warning(
                "An override approves despite failing or unevaluated gates; the audit "
                "log marks it as an override."
            )
            justification = st.text_area(
                "Justification (required)", key="action_justification", max_chars=MAX_TEXT
            )
    else:
        comment = (
            st.text_area("Reason (optional)", key="action_comment", max_chars=MAX_TEXT)
            if pending.action == "cancel"
            else ""
        )
    confirm, back = st.columns(2)
    if back.button("Back", key="action_back"):
        _close()
        st.rerun()
    if not confirm.button(
        f"Confirm: {LABELS[pending.action]}", key="action_confirm", type="primary"
    ):
        return
    rid = view.id
    calls: dict[str, Callable[[], RequestView]] = {
        "approve": lambda: approve(settings, registry, actor, rid, comment),
        "override": lambda: approve(
            settings, registry, actor, rid, comment, override=True, justification=justification
        ),
        "reject": lambda: reject(settings, registry, actor, rid, comment),
        "cancel": lambda: cancel(settings, actor, rid, comment),
        "retry_apply": lambda: retry_apply(settings, registry, actor, rid),
    }
    with st.spinner("Working…"):
        _run(calls[pending.action])


def _blocking_gates(settings: Settings, registry: Registry, view: RequestView, action: str) -> None:
    """What would block the approval, shown before the approver writes a comment; evaluated
    once per opened dialog."""
    cached = st.session_state.get(GATES_NOW_KEY)
    if cached is None or cached[0] != view.id:
        with st.spinner("Evaluating the gates…"):
            try:
                report = evaluate_gates(settings, registry, view.model_name, view.version)
            except MlopsError as exc:
                st.error(plain(f"The gates cannot be evaluated now: {exc}"))
                return
        cached = (view.id, report.blocking)
        st.session_state[GATES_NOW_KEY] = cached
    blocking = cached[1]
    if not blocking:
        target = describe_target(view.alias)
        st.success(plain(f"Every gate passes now; approving moves the {target}."))
        return
    # One paragraph per gate: its name and reason come from MLflow and the policy.
    names = "\n\n".join("• " + plain(f"{g.name}: {g.reason}") for g in blocking)
    if action == "override":
        st.warning(f"These gates block, and your override lets them through:\n\n{names}")
    else:
        st.error(
            "These gates block, so an approval will be refused (only an admin may override, "
            f"with a justification):\n\n{names}"
        )


def _confirm_rollback(
    settings: Settings, registry: Registry, actor: Actor, pending: PendingAction
) -> None:
    plan = plan_rollback(settings, registry, pending.model or "")
    move = f"{plan.model}: move {plan.alias} from v{plan.current_version} back to "
    st.markdown(f"**Roll back** {plain(move + f'v{plan.target_version}.')}")
    reason = st.text_area("Reason (required)", key="rollback_reason", max_chars=MAX_TEXT)
    confirm, back = st.columns(2)
    if back.button("Back", key="rollback_back"):
        _close()
        st.rerun()
    if confirm.button("Confirm rollback", key="rollback_confirm", type="primary"):
        with st.spinner("Moving the alias…"):
            _run(lambda: rollback(settings, registry, actor, plan.model, reason))


def open_dialog(settings: Settings, registry: Registry, actor: Actor) -> None:
    """Show the confirmation dialog of the action the user started, if any."""
    pending = st.session_state.get(PENDING_KEY)
    if pending is not None:
        _confirm(settings, registry, actor, pending)

"""Deciding a request: four eyes, gates evaluated again, admin override, cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused, MlopsError
from mlops_core.governance.gates import (
    NOT_EVALUATED,
    GateReport,
    GateResult,
    evaluate_gates,
    summarize,
)
from mlops_core.governance.policy_in_force import policy_in_force
from mlops_core.governance.promotion.apply import apply_approved, apply_refusal
from mlops_core.governance.promotion.state import (
    APPROVE,
    APPROVED,
    CANCELLABLE,
    CANCELLED,
    PENDING,
    REJECT,
    REJECTED,
    RequestView,
    claim,
    gate_event,
    gates_json,
    get_request,
    refusal,
    required_text,
    view_of,
)
from mlops_core.identity import Actor
from mlops_core.people.access import holds_role, require_role
from mlops_core.policy import describe_target
from mlops_core.stores import audit
from mlops_core.stores.db import Decision, PromotionRequest, utcnow
from mlops_core.stores.registry import Registry


def _check_four_eyes(request: PromotionRequest | RequestView, actor: Actor) -> None:
    if request.requested_by == actor.username:
        raise ActionRefused(
            f"{actor.username} requested #{request.id} and may not decide it: another "
            "approver must (four eyes)."
        )


def _check_decidable(request: RequestView, actor: Actor) -> None:
    if request.status != PENDING:
        raise refusal(request, "decide")
    _check_four_eyes(request, actor)
    if actor.username in {d.actor for d in request.decisions}:
        raise ActionRefused(f"{actor.username} already decided request #{request.id}.")


def _gates_now(settings: Settings, registry: Registry, request: RequestView) -> GateReport:
    policy_in_force(settings)
    report = evaluate_gates(settings, registry, request.model_name, request.version)
    if report.alias and report.alias != request.alias:
        # The policy was edited to promote elsewhere: approving would move the wrong target.
        raise ActionRefused(
            f"The policy now promotes {request.model_name} to the {describe_target(report.alias)}"
            f", but request #{request.id} is for the {describe_target(request.alias)}; cancel "
            "it and request again."
        )
    return report


def _record_decision(
    settings: Settings,
    actor: Actor,
    request_id: int,
    verdict: str,
    comment: str,
    report: GateReport | None,
    gates: list[GateResult],
    override_justification: str | None = None,
) -> RequestView:
    action = "override" if override_justification else verdict

    def work(session: Session) -> RequestView:
        request = claim(session, request_id, (PENDING,), "decide")
        _check_four_eyes(request, actor)
        session.add(
            Decision(
                request_id=request_id,
                actor=actor.username,
                actor_via=actor.auth_method,
                verdict=verdict,
                comment=comment,
                override=override_justification is not None,
                justification=override_justification,
                gates=gates_json(gates),
                policy_sha256=report.policy_sha256 if report else None,
                policy_source=report.policy_source if report else None,
                created_at=utcnow(),
            )
        )
        session.flush()
        event = {"model": request.model_name, "version": request.version, "request_id": request_id}
        if report is not None:
            audit.append(
                session, actor, "gates_evaluated", details=gate_event(report, verdict), **event
            )
        approvals = session.scalar(
            select(func.count())
            .select_from(Decision)
            .where(Decision.request_id == request_id, Decision.verdict == APPROVE)
        )
        details: dict[str, Any] = {
            "alias": request.alias,
            "approvals": approvals,
            "approvals_required": request.approvals_required,
            "gate_summary": summarize(gates),
        }
        if override_justification:
            details["justification"] = override_justification
            details["overridden_gates"] = [g.name for g in gates if not g.passed]
        audit.append(session, actor, action, reason=comment, details=details, **event)
        if verdict == REJECT or approvals >= request.approvals_required:
            request.status = REJECTED if verdict == REJECT else APPROVED
            request.decided_at = utcnow()
        session.flush()
        return view_of(session, request)

    try:
        return audit.atomic(settings, work)
    except IntegrityError:
        # The unique (request, actor) constraint: the same person deciding twice at once.
        raise ActionRefused(f"{actor.username} already decided request #{request_id}.") from None


def approve(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    request_id: int,
    comment: str,
    override: bool = False,
    justification: str | None = None,
) -> RequestView:
    """Approve; with enough approvals the alias is moved at once (see `apply_approved`).
    The view returned is the committed state: cancelled, when a cancel came first.

    `override` (admins, with a justification) lets blocking gates through; when no gate
    blocks, the approval is an ordinary one and is not recorded as an override.
    """
    require_role(actor, "approver", "approve a promotion")
    comment = required_text(comment, "comment")
    if override:
        require_role(actor, "admin", "override a failing gate")
        justification = required_text(justification, "justification for the override")
    request = get_request(settings, request_id)
    _check_decidable(request, actor)
    report = _gates_now(settings, registry, request)
    if report.blocking and not override:
        names = ", ".join(f"{g.name} ({g.status.replace('_', ' ')})" for g in report.blocking)
        raise ActionRefused(
            f"Gates block approving #{request_id}: {names}. Only an admin may override, "
            "with a written justification."
        )
    view = _record_decision(
        settings,
        actor,
        request_id,
        APPROVE,
        comment,
        report,
        report.results,
        justification if report.blocking else None,
    )
    # A model with a rollout plan moves in stages: the approved request waits for
    # `rollout start` (mlops_core.rollout), which applies it once its stages have passed.
    if view.status == APPROVED and policy_in_force(settings).rollout_plan(view.model_name) is None:
        return apply_approved(settings, registry, actor, request_id)
    return view


def reject(
    settings: Settings, registry: Registry, actor: Actor, request_id: int, comment: str
) -> RequestView:
    require_role(actor, "approver", "reject a promotion")
    comment = required_text(comment, "comment")
    request = get_request(settings, request_id)
    _check_decidable(request, actor)
    try:
        report: GateReport | None = _gates_now(settings, registry, request)
        gates = report.results
    except MlopsError as exc:
        # Saying no must not depend on MLflow answering; the record says why gates are missing.
        report = None
        gates = [GateResult("gates", "all", NOT_EVALUATED, None, None, "", f"Not evaluated: {exc}")]
    return _record_decision(settings, actor, request_id, REJECT, comment, report, gates)


def _check_canceller(request: PromotionRequest | RequestView, actor: Actor) -> None:
    if request.requested_by != actor.username and not holds_role(actor, "admin"):
        raise ActionRefused(
            f"Only {request.requested_by}, who requested #{request.id}, or an admin may cancel it."
        )


def cancel(
    settings: Settings, actor: Actor, request_id: int, reason: str | None = None
) -> RequestView:
    """Withdraw a pending or approved request: its requester, or an admin. Once an apply
    has claimed the request (applying) it is too late: the apply decides the outcome."""
    require_role(actor, "requester", "cancel a promotion request")

    def work(session: Session) -> RequestView:
        request = claim(session, request_id, CANCELLABLE, "cancel")
        _check_canceller(request, actor)
        request.status = CANCELLED
        request.decided_at = utcnow()
        audit.append(
            session,
            actor,
            "cancel",
            model=request.model_name,
            version=request.version,
            request_id=request_id,
            reason=(reason or "").strip() or None,
            details={"alias": request.alias},
        )
        session.flush()
        return view_of(session, request)

    return audit.atomic(settings, work)


def _permitted(*checks: Callable[[], None]) -> bool:
    try:
        for check in checks:
            check()
    except MlopsError:
        return False
    return True


def decision_refusal(actor: Actor, request: RequestView) -> str | None:
    """Why the actor may not approve or reject the request now; None when they may."""
    try:
        require_role(actor, "approver", "approve or reject a promotion")
        _check_decidable(request, actor)
    except MlopsError as exc:
        return str(exc)
    return None


def allowed_actions(settings: Settings, actor: Actor, request: RequestView) -> list[str]:
    """The actions the actor may take on the request now, by the same checks the actions
    run (gates aside: they are evaluated when the approver acts). For showing buttons."""
    may_decide = _permitted(
        lambda: require_role(actor, "approver", "decide"),
        lambda: _check_decidable(request, actor),
    )
    actions = ["approve", "reject"] if may_decide else []
    if may_decide and holds_role(actor, "admin"):
        actions.append("override")
    if request.status in CANCELLABLE and _permitted(
        lambda: require_role(actor, "requester", "cancel"),
        lambda: _check_canceller(request, actor),
    ):
        actions.append("cancel")
    if (
        request.retryable
        and holds_role(actor, "approver")
        and apply_refusal(settings, request) is None
    ):
        actions.append("retry_apply")
    return actions

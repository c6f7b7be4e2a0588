"""The promotion workflow: request, four-eyes decision, compare-and-set apply, rollback.

Every action takes the acting user and checks their role and the workflow rules here, so
the UI hiding a button is never the protection. Each state change commits in one
transaction with its audit event (`audit.atomic`).

States of a request:

    pending --approve (enough approvers)--> approved --apply--> applied --rollback--> rolled_back
       |                                       |  \\--champion moved meanwhile--> stale
       |--reject--> rejected                   |--MLflow failed: stays approved, last_error set,
       |--cancel--> cancelled <----cancel------'   retry with `retry_apply`

Rules:
- Request: the requester role; the champion version at that moment and the gate results
  are frozen into the request. One open (pending/approved) request per (model, alias),
  enforced by a unique partial index in the database.
- Decide: the approver role, never the request's own requester (four eyes, admins too),
  with a comment. Gates are evaluated again; a gate that failed or could not be evaluated
  blocks approval unless an admin overrides with a written justification (audited as
  "override"). Any rejection rejects; `approvals_required` distinct approvals approve.
  Deciding starts with a conditional UPDATE on the pending request, so concurrent deciders
  are serialised by the database: the one that comes second sees "already decided".
- Apply (right after the approving decision, or `retry_apply`): compare-and-set against
  the frozen champion. If the alias points elsewhere the request goes stale; if MLflow
  fails the request stays approved with `last_error`. Marking it applied is a conditional
  UPDATE, so a double click cannot apply twice. MLflow has no atomic compare-and-set on
  aliases: a move by someone else in the instant between our read and our write is not
  prevented, but `reconcile` reports it.
- Rollback: the approver role; moves the alias back to the champion frozen in the last
  applied request, only while the alias still points at what that request applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core import audit
from mlops_core.access import holds_role, require_role
from mlops_core.config import Settings
from mlops_core.db import AuditEvent, Decision, PromotionRequest, session_factory, utcnow
from mlops_core.errors import ActionRefused, InvalidInput, MlopsError, NotFound
from mlops_core.gates import (
    NOT_EVALUATED,
    GateReport,
    GateResult,
    evaluate_gates,
    results_from_json,
    summarize,
)
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.registry import Registry

PENDING, APPROVED, REJECTED, CANCELLED = "pending", "approved", "rejected", "cancelled"
APPLIED, STALE, ROLLED_BACK = "applied", "stale", "rolled_back"
OPEN = (PENDING, APPROVED)
APPROVE, REJECT = "approve", "reject"
TAG_REQUEST = "mlops.promotion.request_id"
TAG_APPROVED_BY = "mlops.promotion.approved_by"
TAG_APPROVED_AT = "mlops.promotion.approved_at"
# Audit actions that say where the panel last put an alias.
ALIAS_SETTING_ACTIONS = ("apply", "rollback", "alias_accepted")
MAX_TEXT = 5000


@dataclass(frozen=True)
class DecisionView:
    id: int
    actor: str
    actor_via: str
    verdict: str
    comment: str
    override: bool
    justification: str | None
    gates: list[GateResult]
    created_at: datetime


@dataclass(frozen=True)
class RequestView:
    id: int
    model_name: str
    alias: str
    version: str
    champion_version: str | None
    status: str
    requested_by: str
    requested_via: str
    reason: str
    approvals_required: int
    gates_at_request: list[GateResult]
    created_at: datetime
    decided_at: datetime | None
    applied_at: datetime | None
    last_error: str | None
    decisions: list[DecisionView] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def approvers(self) -> list[str]:
        return [d.actor for d in self.decisions if d.verdict == APPROVE]

    @property
    def gate_summary(self) -> str:
        return summarize(self.gates_at_request)

    @property
    def needs_retry(self) -> bool:
        """Approved, but MLflow failed while moving the alias."""
        return self.status == APPROVED and self.last_error is not None

    def to_dict(self) -> dict[str, Any]:
        return audit.json_safe(
            {
                "id": self.id,
                "model": self.model_name,
                "alias": self.alias,
                "version": self.version,
                "champion_version": self.champion_version,
                "status": self.status,
                "requested_by": self.requested_by,
                "requested_via": self.requested_via,
                "reason": self.reason,
                "approvals_required": self.approvals_required,
                "gate_summary": self.gate_summary,
                "gates_at_request": [g.to_dict() for g in self.gates_at_request],
                "created_at": self.created_at.isoformat(timespec="seconds"),
                "decided_at": _iso(self.decided_at),
                "applied_at": _iso(self.applied_at),
                "last_error": self.last_error,
                "decisions": [
                    {
                        "actor": d.actor,
                        "verdict": d.verdict,
                        "comment": d.comment,
                        "override": d.override,
                        "justification": d.justification,
                        "created_at": d.created_at.isoformat(timespec="seconds"),
                        "gate_summary": summarize(d.gates),
                    }
                    for d in self.decisions
                ],
            }
        )


@dataclass(frozen=True)
class ReconcileWarning:
    model: str
    alias: str
    kind: str  # "alias_moved" | "apply_pending"
    message: str
    expected_version: str | None = None
    actual_version: str | None = None
    request_id: int | None = None
    # The audit event that last set the alias through the panel.
    event_id: int | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _text(value: str | None, what: str) -> str:
    cleaned = (value or "").strip()
    if not cleaned:
        raise InvalidInput(f"A {what} is required.")
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(
            f"The {what} is too long ({len(cleaned)} characters, at most {MAX_TEXT})."
        )
    return cleaned


def _gates_json(results: Iterable[GateResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def _gate_event(report: GateReport, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "summary": report.summary,
        "champion_version": report.champion_version,
        "gates": [
            {"name": r.name, "status": r.status, "observed": r.observed, "threshold": r.threshold}
            for r in report.results
        ],
    }


# --- reading ------------------------------------------------------------------------------


def _decision_view(decision: Decision) -> DecisionView:
    return DecisionView(
        id=decision.id,
        actor=decision.actor,
        actor_via=decision.actor_via,
        verdict=decision.verdict,
        comment=decision.comment,
        override=decision.override,
        justification=decision.justification,
        gates=results_from_json(decision.gates),
        created_at=decision.created_at,
    )


def _view(session: Session, request: PromotionRequest) -> RequestView:
    decisions = session.scalars(
        select(Decision).where(Decision.request_id == request.id).order_by(Decision.id)
    )
    return RequestView(
        id=request.id,
        model_name=request.model_name,
        alias=request.alias,
        version=request.version,
        champion_version=request.champion_version,
        status=request.status,
        requested_by=request.requested_by,
        requested_via=request.requested_via,
        reason=request.reason,
        approvals_required=request.approvals_required,
        gates_at_request=results_from_json(request.gates_at_request),
        created_at=request.created_at,
        decided_at=request.decided_at,
        applied_at=request.applied_at,
        last_error=request.last_error,
        decisions=[_decision_view(d) for d in decisions],
    )


def _load(session: Session, request_id: int) -> PromotionRequest:
    request = session.get(PromotionRequest, request_id, populate_existing=True)
    if request is None:
        raise NotFound(f"There is no promotion request #{request_id}.")
    return request


def get_request(settings: Settings, request_id: int) -> RequestView:
    with session_factory(settings.db_url)() as session:
        return _view(session, _load(session, request_id))


def list_requests(
    settings: Settings,
    model: str | None = None,
    statuses: Iterable[str] | None = None,
    limit: int = 200,
) -> list[RequestView]:
    """Requests, newest first."""
    query = select(PromotionRequest).order_by(PromotionRequest.id.desc()).limit(limit)
    if model:
        query = query.where(PromotionRequest.model_name == model)
    if statuses is not None:
        query = query.where(PromotionRequest.status.in_(list(statuses)))
    with session_factory(settings.db_url)() as session:
        return [_view(session, r) for r in session.scalars(query).all()]


def open_requests(settings: Settings) -> list[RequestView]:
    """Pending requests and approved ones not applied yet (for the overview)."""
    return list_requests(settings, statuses=OPEN)


def describe(view: RequestView) -> str:
    """One sentence on where the request stands, for the CLI and the panel."""
    target = f"{view.model_name} v{view.version}"
    if view.needs_retry:
        return (
            f"Request #{view.id} ({target}) is approved, but moving {view.alias} failed: "
            f"{view.last_error} It stays approved until the apply is retried."
        )
    if view.status == PENDING:
        approvals = len(view.approvers)
        return (
            f"Request #{view.id} ({target}) is pending: "
            f"{approvals} of {view.approvals_required} approvals."
        )
    if view.status == APPLIED:
        return (
            f"Request #{view.id} applied: {view.alias} of {view.model_name} "
            f"now points at v{view.version}."
        )
    if view.status == STALE:
        return (
            f"Request #{view.id} is stale: {view.alias} of {view.model_name} no longer points at "
            f"v{view.champion_version}, so it was not moved. Request again if still wanted."
        )
    if view.status == ROLLED_BACK:
        return (
            f"Rolled back request #{view.id}: {view.alias} of {view.model_name} points at "
            f"v{view.champion_version} again."
        )
    return f"Request #{view.id} ({target}) is {view.status.replace('_', ' ')}."


# --- request ------------------------------------------------------------------------------


def _open_request_id(session: Session, model: str, alias: str) -> int | None:
    return session.scalar(
        select(PromotionRequest.id).where(
            PromotionRequest.model_name == model,
            PromotionRequest.alias == alias,
            PromotionRequest.status.in_(OPEN),
        )
    )


def request_promotion(
    settings: Settings, registry: Registry, actor: Actor, model: str, version: str, reason: str
) -> RequestView:
    """Ask to move the model's alias to `version`; freezes the champion and the gates."""
    require_role(actor, "requester", "request a promotion")
    reason = _text(reason, "reason")
    policy = load_policy(settings.policy_file)
    report = evaluate_gates(settings, registry, model, str(version))
    if report.champion_version == report.version:
        raise ActionRefused(f"v{report.version} of {model} already is the {report.alias}.")

    def work(session: Session) -> RequestView:
        request = PromotionRequest(
            model_name=model,
            alias=report.alias,
            version=report.version,
            champion_version=report.champion_version,
            status=PENDING,
            requested_by=actor.username,
            requested_via=actor.auth_method,
            reason=reason,
            approvals_required=policy.for_model(model).approvers_required,
            gates_at_request=_gates_json(report.results),
            created_at=utcnow(),
        )
        session.add(request)
        session.flush()
        event = {"model": model, "version": report.version, "request_id": request.id}
        audit.append(
            session,
            actor,
            "request",
            reason=reason,
            details={
                "alias": report.alias,
                "champion_version": report.champion_version,
                "approvals_required": request.approvals_required,
            },
            **event,
        )
        audit.append(
            session, actor, "gates_evaluated", details=_gate_event(report, "request"), **event
        )
        return _view(session, request)

    try:
        return audit.atomic(settings.db_url, work)
    except IntegrityError:
        with session_factory(settings.db_url)() as session:
            existing = _open_request_id(session, model, report.alias)
        if existing is None:
            raise
        raise ActionRefused(
            f"Request #{existing} for {model} ({report.alias}) is still open; decide or cancel "
            "it first (one open request per model and alias)."
        ) from None


# --- decisions ----------------------------------------------------------------------------


def _refusal(request: PromotionRequest | RequestView, doing: str) -> ActionRefused:
    """Why a request in its current state cannot be acted on; says "already decided"."""
    if request.status == CANCELLED:
        return ActionRefused(f"Request #{request.id} was cancelled; nothing to {doing}.")
    if request.status == PENDING:
        return ActionRefused(f"Request #{request.id} is still pending; nothing to {doing}.")
    return ActionRefused(
        f"Request #{request.id} is already decided ({request.status}); nothing to {doing}."
    )


def _claim(
    session: Session, request_id: int, statuses: tuple[str, ...], doing: str
) -> PromotionRequest:
    """Lock the request if it is in one of `statuses`, else refuse.

    A no-op UPDATE guarded by the status takes the row's write lock (on SQLite the
    database's), so concurrent actions on one request run one after the other and each
    sees what the previous one committed.
    """
    claimed = session.execute(
        update(PromotionRequest)
        .where(PromotionRequest.id == request_id, PromotionRequest.status.in_(statuses))
        .values(status=PromotionRequest.status)
        .execution_options(synchronize_session=False)
    )
    request = _load(session, request_id)
    if claimed.rowcount == 0:
        raise _refusal(request, doing)
    return request


def _check_four_eyes(request: PromotionRequest | RequestView, actor: Actor) -> None:
    if request.requested_by == actor.username:
        raise ActionRefused(
            f"{actor.username} requested #{request.id} and may not decide it: another "
            "approver must (four eyes)."
        )


def _check_decidable(request: RequestView, actor: Actor) -> None:
    if request.status != PENDING:
        raise _refusal(request, "decide")
    _check_four_eyes(request, actor)
    if actor.username in {d.actor for d in request.decisions}:
        raise ActionRefused(f"{actor.username} already decided request #{request.id}.")


def _gates_now(settings: Settings, registry: Registry, request: RequestView) -> GateReport:
    return evaluate_gates(settings, registry, request.model_name, request.version)


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
        request = _claim(session, request_id, (PENDING,), "decide")
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
                gates=_gates_json(gates),
                created_at=utcnow(),
            )
        )
        session.flush()
        event = {"model": request.model_name, "version": request.version, "request_id": request_id}
        if report is not None:
            audit.append(
                session, actor, "gates_evaluated", details=_gate_event(report, verdict), **event
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
        return _view(session, request)

    try:
        return audit.atomic(settings.db_url, work)
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
    """Approve; with enough approvals the alias is moved at once (see `_apply`).

    `override` (admins, with a justification) lets blocking gates through; when no gate
    blocks, the approval is an ordinary one and is not recorded as an override.
    """
    require_role(actor, "approver", "approve a promotion")
    comment = _text(comment, "comment")
    if override:
        require_role(actor, "admin", "override a failing gate")
        justification = _text(justification, "justification for the override")
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
    if view.status == APPROVED:
        return _apply(settings, registry, actor, request_id)
    return view


def reject(
    settings: Settings, registry: Registry, actor: Actor, request_id: int, comment: str
) -> RequestView:
    require_role(actor, "approver", "reject a promotion")
    comment = _text(comment, "comment")
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
    """Withdraw an open request: its requester, or an admin."""
    require_role(actor, "requester", "cancel a promotion request")

    def work(session: Session) -> RequestView:
        request = _claim(session, request_id, OPEN, "cancel")
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
        return _view(session, request)

    return audit.atomic(settings.db_url, work)


def _permitted(*checks: Callable[[], None]) -> bool:
    try:
        for check in checks:
            check()
    except MlopsError:
        return False
    return True


def allowed_actions(actor: Actor, request: RequestView) -> list[str]:
    """The actions the actor may take on the request now, by the same checks the actions
    run (gates aside: they are evaluated when the approver acts). For showing buttons."""
    may_decide = _permitted(
        lambda: require_role(actor, "approver", "decide"),
        lambda: _check_decidable(request, actor),
    )
    actions = ["approve", "reject"] if may_decide else []
    if may_decide and holds_role(actor, "admin"):
        actions.append("override")
    if request.status in OPEN and _permitted(
        lambda: require_role(actor, "requester", "cancel"),
        lambda: _check_canceller(request, actor),
    ):
        actions.append("cancel")
    if request.status == APPROVED and holds_role(actor, "approver"):
        actions.append("retry_apply")
    return actions


# --- apply --------------------------------------------------------------------------------


def _finish(
    settings: Settings,
    actor: Actor,
    request_id: int,
    status: str | None,
    action: str,
    reason: str | None,
    details: dict[str, Any],
    error: str | None = None,
) -> RequestView:
    """Move an approved request to `status` (None: keep it approved, note the error)."""

    def work(session: Session) -> RequestView:
        claimed = session.execute(
            update(PromotionRequest)
            .where(PromotionRequest.id == request_id, PromotionRequest.status == APPROVED)
            .values(
                status=status or APPROVED,
                last_error=error,
                **({"applied_at": utcnow()} if status == APPLIED else {}),
            )
            .execution_options(synchronize_session=False)
        )
        request = _load(session, request_id)
        if claimed.rowcount:
            audit.append(
                session,
                actor,
                action,
                model=request.model_name,
                version=details.get("to_version", request.version),
                request_id=request_id,
                reason=reason,
                details={"alias": request.alias, **details},
            )
        return _view(session, request)

    return audit.atomic(settings.db_url, work)


def _apply(settings: Settings, registry: Registry, actor: Actor, request_id: int) -> RequestView:
    request = get_request(settings, request_id)
    if request.status != APPROVED:
        raise _refusal(request, "apply")
    model, alias = request.model_name, request.alias
    try:
        current = registry.version_by_alias(model, alias)
        found = current.version if current else None
        if found not in (request.champion_version, request.version):
            return _finish(
                settings,
                actor,
                request_id,
                STALE,
                "stale",
                f"{alias} moved to v{found} since the request (it pointed at "
                f"v{request.champion_version}); not clobbering that change.",
                {"expected_version": request.champion_version, "found_version": found},
            )
        # Found at the candidate already: an earlier attempt moved it and failed afterwards.
        if found != request.version:
            registry.move_alias(model, alias, request.version)
        registry.set_version_tags(
            model,
            request.version,
            {
                TAG_REQUEST: str(request_id),
                TAG_APPROVED_BY: ", ".join(request.approvers),
                TAG_APPROVED_AT: (request.decided_at or utcnow()).isoformat(timespec="seconds")
                + "Z",
            },
        )
    except MlopsError as exc:
        return _finish(
            settings,
            actor,
            request_id,
            None,
            "apply_failed",
            str(exc),
            {"error": str(exc)},
            error=str(exc),
        )
    return _finish(
        settings,
        actor,
        request_id,
        APPLIED,
        "apply",
        None,
        {
            "from_version": request.champion_version,
            "to_version": request.version,
            "approved_by": request.approvers,
        },
    )


def retry_apply(
    settings: Settings, registry: Registry, actor: Actor, request_id: int
) -> RequestView:
    """Try again to move the alias of an approved request whose apply failed."""
    require_role(actor, "approver", "apply an approved promotion")
    return _apply(settings, registry, actor, request_id)


# --- rollback -----------------------------------------------------------------------------


def _last_applied(session: Session, model: str, alias: str) -> PromotionRequest | None:
    return session.scalars(
        select(PromotionRequest)
        .where(
            PromotionRequest.model_name == model,
            PromotionRequest.alias == alias,
            PromotionRequest.status == APPLIED,
        )
        .order_by(PromotionRequest.applied_at.desc(), PromotionRequest.id.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback of (model, alias) would do, or why it cannot."""

    model: str
    alias: str
    request: RequestView | None
    current_version: str | None
    refusal: str | None

    @property
    def target_version(self) -> str | None:
        return self.request.champion_version if self.request else None


def plan_rollback(
    settings: Settings, registry: Registry, model: str, alias: str | None = None
) -> RollbackPlan:
    alias = alias or load_policy(settings.policy_file).for_model(model).alias
    with session_factory(settings.db_url)() as session:
        last = _last_applied(session, model, alias)
        request = _view(session, last) if last else None
    current = registry.version_by_alias(model, alias)
    found = current.version if current else None
    refusal = None
    if request is None:
        refusal = f"No promotion of {model} ({alias}) applied through the panel to roll back."
    elif request.champion_version is None:
        refusal = (
            f"Request #{request.id} set the first {alias} of {model}; there is no previous "
            "version to roll back to."
        )
    elif found != request.version:
        refusal = (
            f"{alias} of {model} points at v{found}, not at v{request.version} that request "
            f"#{request.id} applied: it was moved since, and a rollback would undo that change."
        )
    return RollbackPlan(model, alias, request, found, refusal)


def rollback(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    model: str,
    reason: str,
    alias: str | None = None,
) -> RequestView:
    """Move the alias back to the champion the last applied request replaced."""
    require_role(actor, "approver", "roll back a model")
    reason = _text(reason, "reason")
    plan = plan_rollback(settings, registry, model, alias)
    if plan.refusal or plan.request is None or plan.target_version is None:
        raise ActionRefused(plan.refusal or "Nothing to roll back.")
    last_id, from_version = plan.request.id, plan.request.version
    registry.move_alias(model, plan.alias, plan.target_version)

    def work(session: Session) -> RequestView:
        claimed = session.execute(
            update(PromotionRequest)
            .where(PromotionRequest.id == last_id, PromotionRequest.status == APPLIED)
            .values(status=ROLLED_BACK)
            .execution_options(synchronize_session=False)
        )
        request = _load(session, last_id)
        if claimed.rowcount == 0:
            raise ActionRefused(f"Request #{last_id} was rolled back already.")
        audit.append(
            session,
            actor,
            "rollback",
            model=model,
            version=plan.target_version,
            request_id=last_id,
            reason=reason,
            details={
                "alias": plan.alias,
                "from_version": from_version,
                "to_version": plan.target_version,
            },
        )
        return _view(session, request)

    return audit.atomic(settings.db_url, work)


# --- reconcile ----------------------------------------------------------------------------


def _expected_aliases(session: Session) -> dict[tuple[str, str], AuditEvent]:
    """The latest alias-setting event per (model, alias): where the panel left each alias."""
    expected: dict[tuple[str, str], AuditEvent] = {}
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(ALIAS_SETTING_ACTIONS))
        .order_by(AuditEvent.id.desc())
    )
    for event in events:
        key = (event.model_name or "", str((event.details or {}).get("alias", "")))
        expected.setdefault(key, event)
    return expected


def _already_warned(session: Session, warning: ReconcileWarning) -> bool:
    """Whether a warning for this alias was logged since the panel last set it, saying the same."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "reconcile_warning",
            AuditEvent.model_name == warning.model,
            AuditEvent.id > (warning.event_id or 0),
        )
        .order_by(AuditEvent.id.desc())
    )
    for event in events:
        seen = event.details or {}
        if seen.get("alias") == warning.alias:
            return (seen.get("expected_version"), seen.get("actual_version")) == (
                warning.expected_version,
                warning.actual_version,
            )
    return False


def reconcile(settings: Settings, registry: Registry) -> list[ReconcileWarning]:
    """Compare MLflow with where the panel left each alias; list what disagrees.

    An alias moved outside the panel is logged once as a "reconcile_warning" audit event;
    approved requests whose apply failed are listed for a retry.
    """
    with session_factory(settings.db_url)() as session:
        expected = _expected_aliases(session)
    warnings: list[ReconcileWarning] = []
    for (model, alias), event in sorted(expected.items()):
        try:
            current = registry.version_by_alias(model, alias)
        except NotFound:
            current = None
        found = current.version if current else None
        if found == event.version:
            continue
        warnings.append(
            ReconcileWarning(
                model=model,
                alias=alias,
                kind="alias_moved",
                message=f"{alias} of {model} points at "
                f"{'v' + found if found else 'nothing'}, but the panel last set it to "
                f"v{event.version} ({event.action} #{event.id}): it was moved outside the panel.",
                expected_version=event.version,
                actual_version=found,
                request_id=event.request_id,
                event_id=event.id,
            )
        )
    for request in list_requests(settings, statuses=(APPROVED,)):
        warnings.append(
            ReconcileWarning(
                model=request.model_name,
                alias=request.alias,
                kind="apply_pending",
                message=f"Request #{request.id} (v{request.version}) is approved but not applied"
                + (f": {request.last_error}" if request.last_error else "")
                + ". Retry the apply or cancel it.",
                expected_version=request.version,
                request_id=request.id,
            )
        )
    for warning in warnings:
        if warning.kind == "alias_moved":
            _log_warning(settings, warning)
    return warnings


def _log_warning(settings: Settings, warning: ReconcileWarning) -> None:
    def work(session: Session) -> None:
        if _already_warned(session, warning):
            return
        audit.append(
            session,
            audit.SYSTEM,
            "reconcile_warning",
            model=warning.model,
            version=warning.actual_version,
            request_id=warning.request_id,
            reason=warning.message,
            details={
                "alias": warning.alias,
                "expected_version": warning.expected_version,
                "actual_version": warning.actual_version,
            },
        )

    audit.atomic(settings.db_url, work)


def accept_alias(
    settings: Settings, registry: Registry, actor: Actor, model: str, alias: str, reason: str
) -> str | None:
    """An admin accepts where an alias points now, after a move outside the panel."""
    require_role(actor, "admin", "accept an alias moved outside the panel")
    reason = _text(reason, "reason")
    current = registry.version_by_alias(model, alias)
    found = current.version if current else None
    audit.record(
        settings.db_url,
        actor,
        "alias_accepted",
        model=model,
        version=found,
        reason=reason,
        details={"alias": alias},
    )
    return found

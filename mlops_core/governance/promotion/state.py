"""The states of a promotion request, its read-only view, and reading requests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused, InvalidInput, NotFound
from mlops_core.governance.gates import (
    GateReport,
    GateResult,
    results_from_json,
    summarize,
)
from mlops_core.stores import audit
from mlops_core.stores.db import OPEN_STATUSES, Decision, PromotionRequest, session_factory

PENDING, APPROVED, REJECTED, CANCELLED = "pending", "approved", "rejected", "cancelled"
APPLYING, APPLIED, STALE, ROLLED_BACK = "applying", "applied", "stale", "rolled_back"
# Open: pending, approved or applying; the database's unique index counts the same ones.
OPEN = OPEN_STATUSES
# Once an apply has claimed a request, its outcome belongs to that apply alone.
CANCELLABLE = (PENDING, APPROVED)
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
    policy_sha256: str | None = None
    policy_source: str | None = None


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
    # The policy file the request's gates were evaluated under (None: no policy file).
    policy_sha256: str | None = None
    policy_source: str | None = None

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
        """The apply failed: still approved (the alias did not move), or still applying
        (the alias moved, or MLflow could not say, and the tags are missing)."""
        return self.status in (APPROVED, APPLYING) and self.last_error is not None

    @property
    def retryable(self) -> bool:
        """An apply may start: approved, or applying after an apply that ended in an error."""
        return self.status == APPROVED or self.needs_retry

    def to_dict(self) -> dict[str, Any]:
        return audit.json_safe(
            {
                "id": self.id,
                "model": self.model_name,
                "alias": self.alias,
                "target": self.alias,
                "policy_sha256": self.policy_sha256,
                "policy_source": self.policy_source,
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
                "decided_at": iso_or_none(self.decided_at),
                "applied_at": iso_or_none(self.applied_at),
                "last_error": self.last_error,
                "decisions": [
                    {
                        "actor": d.actor,
                        "verdict": d.verdict,
                        "comment": d.comment,
                        "override": d.override,
                        "justification": d.justification,
                        "policy_sha256": d.policy_sha256,
                        "created_at": d.created_at.isoformat(timespec="seconds"),
                        "gate_summary": summarize(d.gates),
                    }
                    for d in self.decisions
                ],
            }
        )


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def required_text(value: str | None, what: str) -> str:
    cleaned = (value or "").strip()
    if not cleaned:
        raise InvalidInput(f"A {what} is required.")
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(
            f"The {what} is too long ({len(cleaned)} characters, at most {MAX_TEXT})."
        )
    return cleaned


def gates_json(results: Iterable[GateResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def gate_event(report: GateReport, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "summary": report.summary,
        "champion_version": report.champion_version,
        "policy_sha256": report.policy_sha256,
        "policy_source": report.policy_source,
        "gates": [
            {"name": r.name, "status": r.status, "observed": r.observed, "threshold": r.threshold}
            for r in report.results
        ],
    }


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
        policy_sha256=decision.policy_sha256,
        policy_source=decision.policy_source,
    )


def view_of(session: Session, request: PromotionRequest) -> RequestView:
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
        policy_sha256=request.policy_sha256,
        policy_source=request.policy_source,
    )


def load_request(session: Session, request_id: int) -> PromotionRequest:
    request = session.get(PromotionRequest, request_id, populate_existing=True)
    if request is None:
        raise NotFound(f"There is no promotion request #{request_id}.")
    return request


def get_request(settings: Settings, request_id: int) -> RequestView:
    with session_factory(settings.db_url)() as session:
        return view_of(session, load_request(session, request_id))


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
        return [view_of(session, r) for r in session.scalars(query).all()]


def open_requests(settings: Settings) -> list[RequestView]:
    """Pending requests and approved ones not applied yet (for the overview)."""
    return list_requests(settings, statuses=OPEN)


def describe(view: RequestView) -> str:
    """One sentence on where the request stands, for the CLI and the panel."""
    target = f"{view.model_name} v{view.version}"
    if view.needs_retry and view.status == APPROVED:
        return (
            f"Request #{view.id} ({target}) is approved, but moving {view.alias} failed: "
            f"{view.last_error} It stays approved until the apply is retried."
        )
    if view.needs_retry:
        return (
            f"Request #{view.id} ({target}) is being applied, but the apply stopped after "
            f"moving {view.alias}, or MLflow could not say whether it moved: {view.last_error} "
            "Retry the apply, or run reconcile, to complete it."
        )
    if view.status == APPLYING:
        return f"Request #{view.id} ({target}) is being applied: {view.alias} is moving."
    if view.status == APPROVED:
        # Not applied at once: the policy rolls the model out in stages (or the apply
        # never started, which reconcile reports).
        return (
            f"Request #{view.id} ({target}) is approved, not applied yet: start its staged "
            f"rollout (Rollouts page, `rollout start --request {view.id}`), or retry the "
            "apply when its policy plans no rollout."
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


def refusal(request: PromotionRequest | RequestView, doing: str) -> ActionRefused:
    """Why a request in its current state cannot be acted on; says "already decided"."""
    if request.status == CANCELLED:
        return ActionRefused(f"Request #{request.id} was cancelled; nothing to {doing}.")
    if request.status == PENDING:
        return ActionRefused(f"Request #{request.id} is still pending; nothing to {doing}.")
    if request.status == APPLYING:
        return ActionRefused(
            f"Request #{request.id} is already decided and being applied right now; too late "
            f"to {doing} it. If that apply was interrupted, reconcile completes it or makes it "
            "retryable."
        )
    return ActionRefused(
        f"Request #{request.id} is already decided ({request.status}); nothing to {doing}."
    )


def claim(
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
    request = load_request(session, request_id)
    if claimed.rowcount == 0:
        raise refusal(request, doing)
    return request

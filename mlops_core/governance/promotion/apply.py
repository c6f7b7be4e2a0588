"""Applying an approved request: claim it, compare-and-set the alias, tag the version.

The claim (approved -> applying, audited as `apply_started`) commits before MLflow is
touched: from then on a cancel is refused and no second apply can start. Every outcome is
a conditional UPDATE of the applying request, and what the caller gets back is the state
that was committed:

- applied: the alias points at the candidate and the version carries the tags;
- stale: the alias pointed at neither the frozen champion nor the candidate;
- approved with `last_error`: MLflow failed and the alias still points at the champion;
- applying with `last_error`: MLflow failed after the alias moved, or could not say
  whether it moved. Never "failed" with the alias moved: a retry or reconcile completes it.

An apply killed between its claim and its outcome leaves the request applying;
`settle_stopped_apply` (run by reconcile) completes it or makes it retryable again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused, MlopsError
from mlops_core.governance.promotion.state import (
    APPLIED,
    APPLYING,
    APPROVED,
    STALE,
    TAG_APPROVED_AT,
    TAG_APPROVED_BY,
    TAG_REQUEST,
    RequestView,
    get_request,
    load_request,
    refusal,
    view_of,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import load_policy
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, utcnow
from mlops_core.stores.registry import Registry

# Every MLflow call gives up within seconds (MLFLOW_HTTP_REQUEST_TIMEOUT), so an apply
# claimed longer ago than this and still without an outcome has stopped.
APPLY_TIMEOUT = timedelta(minutes=10)


def _may_start() -> ColumnElement[bool]:
    """Approved, or applying after an apply that ended in an error (`RequestView.retryable`)."""
    return or_(
        PromotionRequest.status == APPROVED,
        and_(PromotionRequest.status == APPLYING, PromotionRequest.last_error.is_not(None)),
    )


def _claim(settings: Settings, actor: Actor, request_id: int) -> tuple[bool, RequestView]:
    """approved -> applying, committed with its audit event; False when it is not retryable."""

    def work(session: Session) -> tuple[bool, RequestView]:
        claimed = session.execute(
            update(PromotionRequest)
            .where(PromotionRequest.id == request_id, _may_start())
            .values(status=APPLYING, last_error=None, apply_started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        request = load_request(session, request_id)
        if claimed.rowcount:
            audit.append(
                session,
                actor,
                "apply_started",
                model=request.model_name,
                version=request.version,
                request_id=request_id,
                details={
                    "alias": request.alias,
                    "from_version": request.champion_version,
                    "to_version": request.version,
                },
            )
        return bool(claimed.rowcount), view_of(session, request)

    return audit.atomic(settings, work)


def _finish(
    settings: Settings,
    actor: Actor,
    request_id: int,
    status: str,
    action: str,
    details: dict[str, Any],
    reason: str | None = None,
    error: str | None = None,
    stopped_before: datetime | None = None,
) -> RequestView:
    """Move the applying request to `status` with its audit event. If someone else settled
    it first nothing changes, and the view says what they committed.

    `stopped_before`: act only when its apply is no longer in flight - it ended in an
    error, or was claimed before that moment.
    """

    def work(session: Session) -> RequestView:
        conditions = [PromotionRequest.id == request_id, PromotionRequest.status == APPLYING]
        if stopped_before is not None:
            conditions.append(
                or_(
                    PromotionRequest.last_error.is_not(None),
                    PromotionRequest.apply_started_at < stopped_before,
                )
            )
        claimed = session.execute(
            update(PromotionRequest)
            .where(*conditions)
            .values(
                status=status,
                last_error=error,
                **({"applied_at": utcnow()} if status == APPLIED else {}),
            )
            .execution_options(synchronize_session=False)
        )
        request = load_request(session, request_id)
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
        return view_of(session, request)

    return audit.atomic(settings, work)


def _alias_version(registry: Registry, request: RequestView) -> str | None:
    current = registry.version_at(request.model_name, request.alias)
    return current.version if current else None


def _points_at_candidate(registry: Registry, request: RequestView) -> bool | None:
    """Whether the alias points at the candidate now; None when MLflow cannot say."""
    try:
        return _alias_version(registry, request) == request.version
    except MlopsError:
        return None


def _tag(registry: Registry, request: RequestView) -> None:
    approved_at = (request.decided_at or utcnow()).isoformat(timespec="seconds") + "Z"
    registry.set_version_tags(
        request.model_name,
        request.version,
        {
            TAG_REQUEST: str(request.id),
            TAG_APPROVED_BY: ", ".join(request.approvers),
            TAG_APPROVED_AT: approved_at,
        },
    )


def _applied(
    settings: Settings, actor: Actor, request: RequestView, reason: str | None = None, **extra: str
) -> RequestView:
    details = {
        "from_version": request.champion_version,
        "to_version": request.version,
        "approved_by": request.approvers,
        **extra,
    }
    return _finish(settings, actor, request.id, APPLIED, "apply", details, reason)


def _stale(
    settings: Settings,
    actor: Actor,
    request: RequestView,
    found: str | None,
    stopped_before: datetime | None = None,
) -> RequestView:
    return _finish(
        settings,
        actor,
        request.id,
        STALE,
        "stale",
        {"expected_version": request.champion_version, "found_version": found},
        f"{request.alias} moved to v{found} since the request (it pointed at "
        f"v{request.champion_version}); not clobbering that change.",
        stopped_before=stopped_before,
    )


def _failed(
    settings: Settings, actor: Actor, request: RequestView, exc: MlopsError, moved: bool | None
) -> RequestView:
    """Approved again when the alias did not move; otherwise it stays applying."""
    return _finish(
        settings,
        actor,
        request.id,
        APPROVED if moved is False else APPLYING,
        "apply_failed",
        {"error": str(exc), "alias_moved": moved},
        str(exc),
        error=str(exc),
    )


def _move(
    settings: Settings, registry: Registry, actor: Actor, request: RequestView
) -> RequestView:
    """The MLflow part of an apply whose claim has committed."""
    try:
        found = _alias_version(registry, request)
    except MlopsError as exc:
        return _failed(settings, actor, request, exc, moved=False)
    if found not in (request.champion_version, request.version):
        return _stale(settings, actor, request, found)
    try:
        # Found at the candidate already: an earlier attempt moved it and stopped afterwards.
        if found != request.version:
            registry.move_to(request.model_name, request.alias, request.version)
        _tag(registry, request)
    except MlopsError as exc:
        return _failed(settings, actor, request, exc, _points_at_candidate(registry, request))
    return _applied(settings, actor, request)


def apply_approved(
    settings: Settings, registry: Registry, actor: Actor, request_id: int
) -> RequestView:
    """Apply right after the approving decision. A request cancelled in between is left
    alone, and the view returned says so."""
    claimed, view = _claim(settings, actor, request_id)
    return _move(settings, registry, actor, view) if claimed else view


def retry_apply(
    settings: Settings, registry: Registry, actor: Actor, request_id: int
) -> RequestView:
    """Try again to apply a request whose apply failed (or never ran)."""
    require_role(actor, "approver", "apply an approved promotion")
    request = get_request(settings, request_id)
    why_not = apply_refusal(settings, request)
    if why_not:
        raise ActionRefused(why_not)
    claimed, view = _claim(settings, actor, request_id)
    if not claimed:
        raise refusal(view, "apply")
    return _move(settings, registry, actor, view)


def apply_refusal(settings: Settings, request: RequestView) -> str | None:
    """Why a retryable request may still not be applied by hand, None when it may: a model
    with a rollout plan is promoted by its staged rollout, and only that rollout's own
    promotion, once it failed (last_error), is retried by hand. `retry_apply` refuses with
    this, and `decide.allowed_actions` offers the action by it."""
    if request.status != APPROVED or request.last_error is not None:
        return None
    if load_policy(settings.policy_file).rollout_plan(request.model_name) is None:
        return None
    return (
        f"{request.model_name} is promoted by a staged rollout: start it with "
        f"`rollout start --request {request.id}`."
    )


def settle_stopped_apply(
    settings: Settings, registry: Registry, request: RequestView, now: datetime
) -> RequestView:
    """Complete or undo an applying request whose apply stopped (reconcile runs this).

    With the alias at the candidate the apply got that far: the tags are set and the
    request is applied, completed by reconcile (harmless if the apply is still running:
    it would do the same, and only one of the two commits). Otherwise only an apply that
    is no longer in flight is touched: with the alias still at the champion the request
    is approved again, for a retry; with the alias elsewhere it is stale.
    """
    found = _alias_version(registry, request)
    if found == request.version:
        _tag(registry, request)
        reason = "The apply stopped after moving the alias; reconcile completed it."
        return _applied(settings, audit.SYSTEM, request, reason, completed_by="reconcile")
    stopped_before = now - APPLY_TIMEOUT
    if found != request.champion_version:
        return _stale(settings, audit.SYSTEM, request, found, stopped_before)
    error = "The apply stopped before moving the alias; retry it."
    return _finish(
        settings,
        audit.SYSTEM,
        request.id,
        APPROVED,
        "apply_failed",
        {"error": error, "alias_moved": False},
        error,
        error=error,
        stopped_before=stopped_before,
    )

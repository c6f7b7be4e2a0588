"""Applying an approved request: compare-and-set of the alias against the frozen champion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.governance.promotion.state import (
    APPLIED,
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
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, utcnow
from mlops_core.stores.registry import Registry


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


def apply_approved(
    settings: Settings, registry: Registry, actor: Actor, request_id: int
) -> RequestView:
    request = get_request(settings, request_id)
    if request.status != APPROVED:
        raise refusal(request, "apply")
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
    return apply_approved(settings, registry, actor, request_id)

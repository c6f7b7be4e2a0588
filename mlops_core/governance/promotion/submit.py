"""Asking for a promotion: the champion and the gates are frozen into the request."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused
from mlops_core.governance.gates import (
    evaluate_gates,
)
from mlops_core.governance.policy_in_force import policy_in_force
from mlops_core.governance.promotion.state import (
    OPEN,
    PENDING,
    RequestView,
    gate_event,
    gates_json,
    required_text,
    view_of,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import describe_target
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, session_factory, utcnow
from mlops_core.stores.registry import Registry


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
    reason = required_text(reason, "reason")
    policy = policy_in_force(settings)
    if policy.serving_target(model) is None:
        # The target is the policy's to name: the panel does not invent an alias.
        raise ActionRefused(
            f"No policy names where {model} is promoted to, so it cannot be requested. "
            + policy.missing_entry_help(model)
        )
    report = evaluate_gates(settings, registry, model, str(version))
    if report.champion_version == report.version:
        raise ActionRefused(
            f"v{report.version} of {model} already is at the {describe_target(report.alias)}."
        )

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
            gates_at_request=gates_json(report.results),
            policy_sha256=report.policy_sha256,
            policy_source=report.policy_source,
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
            session, actor, "gates_evaluated", details=gate_event(report, "request"), **event
        )
        return view_of(session, request)

    try:
        return audit.atomic(settings, work)
    except IntegrityError:
        with session_factory(settings.db_url)() as session:
            existing = _open_request_id(session, model, report.alias)
        if existing is None:
            raise
        raise ActionRefused(
            f"Request #{existing} for {model} ({report.alias}) is still open; decide or cancel "
            "it first (one open request per model and alias)."
        ) from None

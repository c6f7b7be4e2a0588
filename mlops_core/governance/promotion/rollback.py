"""Rolling back: the alias returns to the champion the last applied request replaced."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused
from mlops_core.governance.promotion.state import (
    APPLIED,
    ROLLED_BACK,
    RequestView,
    load_request,
    required_text,
    view_of,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import load_policy
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, session_factory
from mlops_core.stores.registry import Registry


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
    alias = alias or load_policy(settings.policy_file).serving_target(model)
    if alias is None:
        return RollbackPlan(
            model,
            "",
            None,
            None,
            f"No policy names where {model} is served, so there is nothing to roll back.",
        )
    with session_factory(settings.db_url)() as session:
        last = _last_applied(session, model, alias)
        request = view_of(session, last) if last else None
    current = registry.version_at(model, alias)
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
    reason = required_text(reason, "reason")
    plan = plan_rollback(settings, registry, model, alias)
    if plan.refusal or plan.request is None or plan.target_version is None:
        raise ActionRefused(plan.refusal or "Nothing to roll back.")
    last_id, from_version = plan.request.id, plan.request.version
    registry.move_to(model, plan.alias, plan.target_version)

    def work(session: Session) -> RequestView:
        claimed = session.execute(
            update(PromotionRequest)
            .where(PromotionRequest.id == last_id, PromotionRequest.status == APPLIED)
            .values(status=ROLLED_BACK)
            .execution_options(synchronize_session=False)
        )
        request = load_request(session, last_id)
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
        return view_of(session, request)

    return audit.atomic(settings, work)

"""Starting a rollout: the staged form of applying an approved promotion request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused
from mlops_core.governance.policy_in_force import policy_in_force
from mlops_core.governance.promotion.state import (
    APPROVED,
    RequestView,
    get_request,
    list_requests,
    load_request,
    refusal,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import describe_target, load_policy
from mlops_core.rollout.state import ROLLING_OUT, RUNNING, RolloutView, get_rollout, view_of
from mlops_core.rollout.transitions import sync
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, utcnow
from mlops_core.stores.registry import Registry
from mlops_core.stores.rollout_tables import Rollout


def awaiting_start(settings: Settings) -> list[RequestView]:
    """Approved requests of models the policy rolls out in stages, not started yet."""
    policy = load_policy(settings.policy_file)
    return [
        request
        for request in list_requests(settings, statuses=(APPROVED,))
        if request.last_error is None and policy.rollout_plan(request.model_name) is not None
    ]


def start_rollout(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    request_id: int,
    now: datetime | None = None,
) -> RolloutView:
    """Start the rollout of an approved request under the policy's plan for its model.

    The request goes from approved to rolling_out (still open: no other request for the
    target meanwhile) in the transaction that records the rollout and its audit event; the
    first stage is then published. `now` back-dates the start (the demo's seeded traffic).
    """
    require_role(actor, "approver", "start a rollout")
    request = get_request(settings, request_id)
    policy = policy_in_force(settings)
    plan = policy.rollout_plan(request.model_name)
    if plan is None:
        raise ActionRefused(
            f'The policy has no [models."{request.model_name}".rollout] plan: approving a '
            f"request for {request.model_name} moves its {describe_target(request.alias)} at once."
        )
    if request.status != APPROVED or request.last_error:
        raise refusal(request, "start a rollout of")
    current = registry.version_at(request.model_name, request.alias)
    found = current.version if current else None
    if found != request.champion_version:
        raise ActionRefused(
            f"The {describe_target(request.alias)} of {request.model_name} points at v{found}, "
            f"not at v{request.champion_version} as when request #{request_id} was made: "
            "cancel it and request again."
        )
    started = now or utcnow()
    key_metric = (
        policy.key_metric(request.model_name) or policy.for_model(request.model_name).key_metric
    )
    first = plan.stages[0]

    def work(session: Session) -> RolloutView:
        claimed = session.execute(
            update(PromotionRequest)
            .where(
                PromotionRequest.id == request_id,
                PromotionRequest.status == APPROVED,
                PromotionRequest.last_error.is_(None),
            )
            .values(status=ROLLING_OUT)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:
            raise refusal(load_request(session, request_id), "start a rollout of")
        row = Rollout(
            request_id=request_id,
            model_name=request.model_name,
            version=request.version,
            champion_version=request.champion_version,
            plan=plan.model_dump(),
            policy_sha256=policy.sha256,
            key_metric=key_metric,
            status=RUNNING,
            stage_index=0,
            stage_started_at=started,
            started_by=actor.username,
            started_at=started,
            published=False,
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            actor,
            "rollout_started",
            model=request.model_name,
            version=request.version,
            request_id=request_id,
            details={
                "rollout_id": row.id,
                "alias": request.alias,
                "champion_version": request.champion_version,
                "stage": first.name,
                "mode": first.mode,
                "traffic": first.traffic,
                "stages": [s.name for s in plan.stages],
                "policy_sha256": policy.sha256,
            },
        )
        return view_of(row)

    try:
        view = audit.atomic(settings, work)
    except IntegrityError:
        raise ActionRefused(
            f"{request.model_name} already has a rollout running; it must end first."
        ) from None
    sync(settings, registry, view)
    return get_rollout(settings, view.id)

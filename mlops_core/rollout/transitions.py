"""Moving a rollout from one state to the next, and publishing the state to the registry.

Every change is a conditional UPDATE of the rollout row in the state the caller saw
(compare-and-set), committed with its audit event and, when the request changes with it,
the request's new status: two ticks, or a tick and an approver's click, never both act on
one state. The row is committed before MLflow is written (`published` false until every
write went through), so a process dying in between leaves a rollout whose publication a
tick or reconcile finishes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.identity import Actor
from mlops_core.rollout.guardrails import StageEvaluation
from mlops_core.rollout.publish import publish
from mlops_core.rollout.state import RolloutView, load, view_of
from mlops_core.stores import audit
from mlops_core.stores.db import PromotionRequest, session_factory, utcnow
from mlops_core.stores.registry import Registry
from mlops_core.stores.rollout_tables import Rollout, RolloutEvaluation

# Longer than any tick takes (every MLflow call gives up within seconds); a tick killed
# while holding the lease only delays the next one by this much.
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Change:
    """A state change of one rollout, from the state the caller saw."""

    action: str
    values: dict[str, Any]
    from_statuses: tuple[str, ...]
    from_stage: int | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # The request moves with the rollout: (from statuses, to status).
    request: tuple[tuple[str, ...], str] | None = None


def store_evaluation(session: Session, view: RolloutView, evaluation: StageEvaluation) -> int:
    """Keep the evaluation as evidence; the audit log hears of it when its outcome or a
    guardrail's status differs from the stage's previous evaluation."""
    previous = session.scalars(
        select(RolloutEvaluation)
        .where(
            RolloutEvaluation.rollout_id == view.id,
            RolloutEvaluation.stage_index == view.stage_index,
        )
        .order_by(RolloutEvaluation.id.desc())
        .limit(1)
    ).first()
    evidence = audit.json_safe(evaluation.evidence())
    row = RolloutEvaluation(
        rollout_id=view.id,
        stage_index=view.stage_index,
        stage_name=evaluation.stage,
        traffic=evaluation.traffic,
        evaluated_at=utcnow(),
        outcome=evaluation.outcome,
        summary=evaluation.summary,
        evidence=evidence,
        sha256=evaluation.sha256,
    )
    session.add(row)
    session.flush()
    if previous is None or _statuses(previous.evidence) != _statuses(evidence):
        audit.append(
            session,
            audit.SYSTEM,
            "rollout_evaluated",
            model=view.model,
            version=view.version,
            request_id=view.request_id,
            reason=evaluation.summary,
            details={
                "rollout_id": view.id,
                "evaluation_id": row.id,
                "sha256": row.sha256,
                "stage": evaluation.stage,
                "outcome": evaluation.outcome,
                "guardrails": {g.name: g.status for g in evaluation.guardrails},
            },
        )
    return row.id


def _statuses(evidence: dict[str, Any]) -> tuple:
    guardrails = tuple((g["name"], g["status"]) for g in evidence.get("guardrails", []))
    return evidence.get("outcome"), guardrails


def record_evaluation(settings: Settings, view: RolloutView, evaluation: StageEvaluation) -> int:
    return audit.atomic(settings, lambda session: store_evaluation(session, view, evaluation))


def transition(
    settings: Settings,
    actor: Actor,
    view: RolloutView,
    change: Change,
    evaluation: StageEvaluation | None = None,
) -> tuple[bool, RolloutView]:
    """Apply `change` if the rollout is still as the caller saw it; False and the rollout
    as it is now when someone else changed it first."""

    def work(session: Session) -> tuple[bool, RolloutView]:
        conditions = [Rollout.id == view.id, Rollout.status.in_(change.from_statuses)]
        if change.from_stage is not None:
            conditions.append(Rollout.stage_index == change.from_stage)
        claimed = session.execute(
            update(Rollout)
            .where(*conditions)
            .values(**change.values, published=False)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:
            return False, view_of(load(session, view.id))
        details = dict(change.details)
        if evaluation is not None:
            details["evaluation_id"] = store_evaluation(session, view, evaluation)
            details["evaluation_sha256"] = evaluation.sha256
        if change.request is not None:
            from_statuses, to_status = change.request
            session.execute(
                update(PromotionRequest)
                .where(
                    PromotionRequest.id == view.request_id,
                    PromotionRequest.status.in_(from_statuses),
                )
                .values(status=to_status, last_error=None)
                .execution_options(synchronize_session=False)
            )
        audit.append(
            session,
            actor,
            change.action,
            model=view.model,
            version=view.version,
            request_id=view.request_id,
            reason=change.reason,
            details={"rollout_id": view.id, **details},
        )
        return True, view_of(load(session, view.id))

    return audit.atomic(settings, work)


def sync(settings: Settings, registry: Registry, view: RolloutView) -> str | None:
    """Publish the rollout's state; None when it went through, else MLflow's error (the
    rollout stays unpublished, for the next tick or reconcile)."""
    try:
        publish(registry, view.model, view.publication())
    except MlopsError as exc:
        return str(exc)
    with session_factory(settings.db_url).begin() as session:
        session.execute(
            update(Rollout)
            .where(
                Rollout.id == view.id,
                Rollout.status == view.status,
                Rollout.stage_index == view.stage_index,
            )
            .values(published=True)
            .execution_options(synchronize_session=False)
        )
    return None


@contextmanager
def lease(settings: Settings, rollout_id: int) -> Iterator[bool]:
    """Hold the rollout's tick lease for the block; yields False when another holds it.

    A conditional UPDATE takes it, so on PostgreSQL concurrent callers queue on the row and
    all but one find it taken; on SQLite the database lock does the same.
    """
    token = secrets.token_hex(16)
    now = utcnow()
    with session_factory(settings.db_url).begin() as session:
        taken = session.execute(
            update(Rollout)
            .where(
                Rollout.id == rollout_id,
                or_(Rollout.lease_until.is_(None), Rollout.lease_until < now),
            )
            .values(lease_token=token, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        ).rowcount
    try:
        yield bool(taken)
    finally:
        if taken:
            with session_factory(settings.db_url).begin() as session:
                session.execute(
                    update(Rollout)
                    .where(Rollout.id == rollout_id, Rollout.lease_token == token)
                    .values(lease_token=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )


def ended(now: datetime, reason: str | None) -> dict[str, Any]:
    return {"ended_at": now, "reason": reason}

"""A rollout's read-only view, reading rollouts and their evaluations, and the publication
each state asks of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import NotFound
from mlops_core.rollout.publish import CHALLENGER, Publication
from mlops_core.rollout_policy import Guardrails, RolloutPlan, RolloutStage
from mlops_core.stores import audit
from mlops_core.stores.db import session_factory
from mlops_core.stores.rollout_tables import ACTIVE_STATUSES, Rollout, RolloutEvaluation

RUNNING, PAUSED, PROMOTING = "running", "paused", "promoting"
COMPLETED, ROLLED_BACK, ABORTED, STALE = "completed", "rolled_back", "aborted", "stale"
ACTIVE = ACTIVE_STATUSES
# The request's status while its rollout runs (an open status: it holds its alias).
ROLLING_OUT = "rolling_out"
ROLLOUT_ACTIONS = (
    "rollout_started",
    "rollout_advanced",
    "rollout_promoting",
    "rollout_completed",
    "rollout_rolled_back",
    "rollout_paused",
    "rollout_resumed",
    "rollout_aborted",
    "rollout_stale",
    "rollout_evaluated",
    "rollout_repaired",
)


@dataclass(frozen=True)
class RolloutView:
    id: int
    request_id: int
    model: str
    version: str
    champion_version: str | None
    plan: RolloutPlan
    policy_sha256: str | None
    key_metric: str
    status: str
    stage_index: int
    stage_started_at: datetime
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    reason: str | None
    published: bool

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def stage(self) -> RolloutStage:
        return self.plan.stages[self.stage_index]

    @property
    def guardrails(self) -> Guardrails:
        return self.plan.guardrails_of(self.stage)

    @property
    def is_last_stage(self) -> bool:
        return self.stage_index == len(self.plan.stages) - 1

    @property
    def traffic(self) -> float:
        """The challenger's share now: the stage's while live, 0 once ended."""
        return self.stage.traffic if self.is_active else 0.0

    def publication(self) -> Publication:
        if self.is_active:
            stage = self.stage
            return Publication(self.id, stage.name, self.version, stage.mode, stage.traffic)
        return Publication(self.id, self.status, None, None, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return audit.json_safe(
            {
                "id": self.id,
                "request_id": self.request_id,
                "model": self.model,
                "version": self.version,
                "champion_version": self.champion_version,
                "status": self.status,
                "stage_index": self.stage_index,
                "stage": self.stage.name,
                "mode": self.stage.mode if self.is_active else None,
                "traffic": self.traffic,
                "stage_started_at": self.stage_started_at.isoformat(timespec="seconds"),
                "started_by": self.started_by,
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "ended_at": self.ended_at.isoformat(timespec="seconds") if self.ended_at else None,
                "reason": self.reason,
                "published": self.published,
                "key_metric": self.key_metric,
                "policy_sha256": self.policy_sha256,
                "challenger_alias": CHALLENGER,
                "plan": self.plan.model_dump(),
            }
        )


@dataclass(frozen=True)
class EvaluationView:
    id: int
    rollout_id: int
    stage_index: int
    stage: str
    traffic: float
    evaluated_at: datetime
    outcome: str
    summary: str
    evidence: dict[str, Any]
    sha256: str


def view_of(row: Rollout) -> RolloutView:
    return RolloutView(
        id=row.id,
        request_id=row.request_id,
        model=row.model_name,
        version=row.version,
        champion_version=row.champion_version,
        plan=RolloutPlan.model_validate(row.plan),
        policy_sha256=row.policy_sha256,
        key_metric=row.key_metric,
        status=row.status,
        stage_index=row.stage_index,
        stage_started_at=row.stage_started_at,
        started_by=row.started_by,
        started_at=row.started_at,
        ended_at=row.ended_at,
        reason=row.reason,
        published=row.published,
    )


def load(session: Session, rollout_id: int) -> Rollout:
    row = session.get(Rollout, rollout_id, populate_existing=True)
    if row is None:
        raise NotFound(f"There is no rollout #{rollout_id}.")
    return row


def get_rollout(settings: Settings, rollout_id: int) -> RolloutView:
    with session_factory(settings.db_url)() as session:
        return view_of(load(session, rollout_id))


def list_rollouts(
    settings: Settings, model: str | None = None, active_only: bool = False
) -> list[RolloutView]:
    """Rollouts, newest first."""
    query = select(Rollout).order_by(Rollout.id.desc())
    if model:
        query = query.where(Rollout.model_name == model)
    if active_only:
        query = query.where(Rollout.status.in_(ACTIVE))
    with session_factory(settings.db_url)() as session:
        return [view_of(row) for row in session.scalars(query)]


def current_rollout(settings: Settings, model: str) -> RolloutView:
    """The model's active rollout, else its latest one."""
    rollouts = list_rollouts(settings, model)
    if not rollouts:
        raise NotFound(f"{model} has no rollout.")
    return next((r for r in rollouts if r.is_active), rollouts[0])


def active_rollout(settings: Settings, model: str) -> RolloutView:
    found = list_rollouts(settings, model, active_only=True)
    if not found:
        raise NotFound(f"{model} has no rollout running.")
    return found[0]


def evaluations(settings: Settings, rollout_id: int) -> list[EvaluationView]:
    """Every stored evaluation of the rollout, oldest first."""
    query = (
        select(RolloutEvaluation)
        .where(RolloutEvaluation.rollout_id == rollout_id)
        .order_by(RolloutEvaluation.id)
    )
    with session_factory(settings.db_url)() as session:
        return [_evaluation_view(e) for e in session.scalars(query)]


def _evaluation_view(e: RolloutEvaluation) -> EvaluationView:
    return EvaluationView(
        id=e.id,
        rollout_id=e.rollout_id,
        stage_index=e.stage_index,
        stage=e.stage_name,
        traffic=e.traffic,
        evaluated_at=e.evaluated_at,
        outcome=e.outcome,
        summary=e.summary,
        evidence=e.evidence,
        sha256=e.sha256,
    )


def latest_evaluation(settings: Settings, rollout_id: int) -> EvaluationView | None:
    query = (
        select(RolloutEvaluation)
        .where(RolloutEvaluation.rollout_id == rollout_id)
        .order_by(RolloutEvaluation.id.desc())
        .limit(1)
    )
    with session_factory(settings.db_url)() as session:
        found = session.scalars(query).first()
        return None if found is None else _evaluation_view(found)


@dataclass(frozen=True)
class RunningRollout:
    """A model's running (or paused) rollout, as the overview lists it."""

    rollout: RolloutView
    latest: EvaluationView | None

    @property
    def stage_text(self) -> str:
        view = self.rollout
        return f"{view.stage.name} ({view.stage_index + 1} of {len(view.plan.stages)})"

    @property
    def verdict(self) -> str:
        if self.latest is None:
            return "not evaluated yet"
        return f"{self.latest.outcome}: {self.latest.summary}"


def running_rollouts(settings: Settings) -> list[RunningRollout]:
    """Every active rollout with its latest evaluation, by model."""
    active = sorted(list_rollouts(settings, active_only=True), key=lambda r: r.model)
    return [RunningRollout(view, latest_evaluation(settings, view.id)) for view in active]


def describe(view: RolloutView) -> str:
    """One sentence on where the rollout stands, for the CLI and the page."""
    target = f"Rollout #{view.id} of {view.model} v{view.version}"
    stage = f"stage {view.stage_index + 1} of {len(view.plan.stages)} ({view.stage.name})"
    if view.status == RUNNING:
        share = "shadow" if view.stage.mode == "shadow" else f"{view.stage.traffic:g}% split"
        return f"{target} is at {stage}: {share}."
    if view.status == PAUSED:
        return f"{target} is paused at {stage}: {view.reason}"
    if view.status == PROMOTING:
        return f"{target} passed its last stage; moving the champion to v{view.version}."
    if view.status == COMPLETED:
        return f"{target} completed: v{view.version} is the champion."
    return f"{target} is {view.status.replace('_', ' ')}: {view.reason}"


ENDING_ACTIONS = ("rollout_completed", "rollout_rolled_back", "rollout_aborted", "rollout_stale")


@dataclass(frozen=True)
class TrafficPoint:
    at: datetime
    traffic: float
    stage: str
    action: str


def traffic_history(settings: Settings, view: RolloutView) -> list[TrafficPoint]:
    """The challenger's share over time, from the rollout's audit events."""
    events = audit.list_events(settings.db_url, audit.AuditFilter(request_id=view.request_id))
    points = []
    for event in reversed(events):
        details = event.details or {}
        if event.action not in ROLLOUT_ACTIONS or details.get("rollout_id") != view.id:
            continue
        if event.action in ("rollout_started", "rollout_advanced"):
            stage = details.get("stage") or details.get("to_stage") or ""
            points.append(TrafficPoint(event.created_at, details["traffic"], stage, event.action))
        elif event.action in ENDING_ACTIONS:
            points.append(TrafficPoint(event.created_at, 0.0, view.status, event.action))
    return points

"""A rollout's tick: evaluate the stage, then advance, roll back or promote.

`tick` is what a scheduler runs every minute (`rollout tick`, or the worker's
`tick_all`): idempotent, one tick per model at a time (the rollout's lease), and every
change a compare-and-set on the state it evaluated. It also finishes any publication a
dead process left half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.governance.promotion.apply import apply_approved
from mlops_core.governance.promotion.state import (
    APPLIED,
    APPROVED,
    CANCELLED,
    get_request,
)
from mlops_core.governance.promotion.state import (
    STALE as REQUEST_STALE,
)
from mlops_core.identity import Actor
from mlops_core.policy import ModelPolicy, load_policy
from mlops_core.rollout.guardrails import (
    BREACH,
    HOLD,
    MIN_ROWS,
    NOT_EVALUATED,
    READY,
    GuardrailCheck,
    StageEvaluation,
    StageRows,
    evaluate_stage,
)
from mlops_core.rollout.quality import QualityRule, quality_rule
from mlops_core.rollout.state import (
    ABORTED,
    ACTIVE,
    COMPLETED,
    PAUSED,
    PROMOTING,
    ROLLED_BACK,
    ROLLING_OUT,
    RUNNING,
    STALE,
    RolloutView,
    describe,
    get_rollout,
    list_rollouts,
)
from mlops_core.rollout.transitions import (
    Change,
    ended,
    lease,
    record_evaluation,
    sync,
    transition,
)
from mlops_core.stores import audit
from mlops_core.stores.db import utcnow
from mlops_core.stores.model_data import load_current
from mlops_core.stores.registry import Registry


@dataclass(frozen=True)
class TickResult:
    model: str
    rollout_id: int
    # advanced | promoted | completed | rolled_back | held | waiting | busy | stale | aborted
    outcome: str
    message: str
    status: str
    stage: str
    publish_error: str | None = None


def evaluate(
    settings: Settings, registry: Registry, view: RolloutView, now: datetime
) -> StageEvaluation:
    """The stage's minimums and guardrails over the inference log since the stage began."""
    policy = load_policy(settings.policy_file)
    model_policy = policy.for_model(view.model)
    try:
        frame = load_current(settings, model_policy.data, view.stage_started_at, now).frame
        rule = _quality_rule(registry, model_policy, view)
    except MlopsError as exc:
        return _unreadable(view, str(exc))
    if "model_version" not in frame:
        return _unreadable(view, "the inference log has no model_version column")
    versions = frame["model_version"].astype(str)
    rows = StageRows(
        champion=frame[versions == str(view.champion_version)],
        challenger=frame[versions == view.version],
        elapsed_minutes=max(0.0, (now - view.stage_started_at).total_seconds() / 60),
    )
    return evaluate_stage(rows, view.stage, view.guardrails, rule)


def _quality_rule(
    registry: Registry, model_policy: ModelPolicy, view: RolloutView
) -> QualityRule | None:
    if not view.guardrails.quality_vs_champion or view.champion_version is None:
        return None
    return quality_rule(
        registry,
        model_policy,
        view.model,
        str(view.champion_version),
        view.version,
        view.key_metric,
        view.stage,
        MIN_ROWS,
    )


def _unreadable(view: RolloutView, why: str) -> StageEvaluation:
    check = GuardrailCheck("inference_log", NOT_EVALUATED, None, None, why)
    return StageEvaluation(view.stage.name, view.stage.traffic, HOLD, [], [check], {})


def _rollback(
    settings: Settings, view: RolloutView, evaluation: StageEvaluation, now: datetime
) -> tuple[bool, RolloutView]:
    breaches = [
        {"name": g.name, "observed": g.observed, "threshold": g.threshold, "detail": g.detail}
        for g in evaluation.breaches
    ]
    change = Change(
        "rollout_rolled_back",
        {"status": ROLLED_BACK, **ended(now, evaluation.summary)},
        (RUNNING, PAUSED),
        view.stage_index,
        reason=evaluation.summary,
        details={"stage": view.stage.name, "traffic": view.stage.traffic, "breaches": breaches},
        request=((ROLLING_OUT,), "rolled_back"),
    )
    return transition(settings, audit.SYSTEM, view, change, evaluation)


def advance(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    view: RolloutView,
    evaluation: StageEvaluation,
    now: datetime,
) -> TickResult:
    """Leave a ready stage: into the next one, or, after the last, promote."""
    if not view.is_last_stage:
        following = view.plan.stages[view.stage_index + 1]
        change = Change(
            "rollout_advanced",
            {"stage_index": view.stage_index + 1, "stage_started_at": now},
            (RUNNING,),
            view.stage_index,
            details={
                "from_stage": view.stage.name,
                "to_stage": following.name,
                "mode": following.mode,
                "traffic": following.traffic,
            },
        )
        changed, after = transition(settings, actor, view, change, evaluation)
        return _result(settings, registry, after, "advanced" if changed else "busy")
    change = Change(
        "rollout_promoting",
        {"status": PROMOTING},
        (RUNNING,),
        view.stage_index,
        details={"stage": view.stage.name, "alias_to": view.version},
        request=((ROLLING_OUT,), APPROVED),
    )
    changed, after = transition(settings, actor, view, change, evaluation)
    if not changed:
        return _result(settings, registry, after, "busy")
    return _promote(settings, registry, actor, after, now)


def _promote(
    settings: Settings, registry: Registry, actor: Actor, view: RolloutView, now: datetime
) -> TickResult:
    """Move the champion through the promotion's own apply (compare-and-set against the
    champion frozen in the request, tags, audit); end the rollout by its outcome."""
    request = get_request(settings, view.request_id)
    if request.retryable:
        request = apply_approved(settings, registry, actor, view.request_id)
    endings = {
        APPLIED: (COMPLETED, "rollout_completed", f"v{view.version} is the champion."),
        REQUEST_STALE: (STALE, "rollout_stale", request.last_error or "the champion moved."),
        CANCELLED: (ABORTED, "rollout_aborted", "the request was cancelled while promoting."),
    }
    if request.status not in endings:
        why = request.last_error or "the apply is in flight"
        note = f"Promoting: the champion has not moved yet ({why})."
        return _result(settings, registry, view, "waiting", note)
    status, action, reason = endings[request.status]
    change = Change(action, {"status": status, **ended(now, reason)}, (PROMOTING,), reason=reason)
    changed, after = transition(settings, actor, view, change)
    outcome = status if changed else "busy"
    return _result(settings, registry, after, "promoted" if status == COMPLETED else outcome)


def _result(
    settings: Settings,
    registry: Registry,
    view: RolloutView,
    outcome: str,
    message: str | None = None,
) -> TickResult:
    error = None if view.published else sync(settings, registry, view)
    view = get_rollout(settings, view.id)
    return TickResult(
        view.model,
        view.id,
        outcome,
        message or describe(view),
        view.status,
        view.stage.name,
        error,
    )


def tick_rollout(
    settings: Settings, registry: Registry, rollout_id: int, now: datetime | None = None
) -> TickResult:
    now = now or utcnow()
    with lease(settings, rollout_id) as held:
        view = get_rollout(settings, rollout_id)
        if not held:
            return TickResult(
                view.model, view.id, "busy", "Another tick is on it.", view.status, view.stage.name
            )
        if not view.published:
            sync(settings, registry, view)
            view = get_rollout(settings, rollout_id)
        if view.status == PROMOTING:
            return _promote(settings, registry, audit.SYSTEM, view, now)
        if view.status not in (RUNNING, PAUSED):
            return _result(settings, registry, view, "held")
        evaluation = evaluate(settings, registry, view, now)
        if evaluation.outcome == BREACH:
            changed, after = _rollback(settings, view, evaluation, now)
            return _result(settings, registry, after, ROLLED_BACK if changed else "busy")
        if evaluation.outcome == READY and view.status == RUNNING and view.plan.auto_advance:
            return advance(settings, registry, audit.SYSTEM, view, evaluation, now)
        record_evaluation(settings, view, evaluation)
        return _result(settings, registry, view, "held", evaluation.summary)


def tick_all(
    settings: Settings,
    registry: Registry | None = None,
    model: str | None = None,
    now: datetime | None = None,
) -> list[TickResult]:
    """Tick every active rollout (of `model`), and finish unpublished ended ones."""
    registry = registry or Registry(settings.tracking_uri)
    due = [r for r in list_rollouts(settings, model) if r.status in ACTIVE or not r.published]
    return [tick_rollout(settings, registry, r.id, now) for r in due]

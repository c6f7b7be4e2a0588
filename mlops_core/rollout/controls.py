"""What approvers do to a running rollout: pause, resume, abort, advance a manual stage."""

from __future__ import annotations

from datetime import datetime

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused
from mlops_core.governance.promotion.state import required_text
from mlops_core.identity import Actor
from mlops_core.people.access import holds_role, require_role
from mlops_core.rollout.guardrails import READY
from mlops_core.rollout.progress import TickResult, advance, evaluate
from mlops_core.rollout.state import (
    ABORTED,
    PAUSED,
    ROLLING_OUT,
    RUNNING,
    RolloutView,
    active_rollout,
    get_rollout,
)
from mlops_core.rollout.transitions import Change, ended, lease, sync, transition
from mlops_core.stores.db import utcnow
from mlops_core.stores.registry import Registry


def _change(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    model: str,
    change: Change,
    doing: str,
) -> RolloutView:
    view = active_rollout(settings, model)
    if view.status not in change.from_statuses:
        raise ActionRefused(f"Rollout #{view.id} of {model} is {view.status}; cannot {doing} it.")
    changed, after = transition(settings, actor, view, change)
    if not changed:
        raise ActionRefused(
            f"Rollout #{view.id} of {model} changed meanwhile (now {after.status}); "
            f"cannot {doing} it."
        )
    sync(settings, registry, after)
    return get_rollout(settings, after.id)


def _hold(
    settings: Settings, registry: Registry, actor: Actor, model: str, reason: str, pausing: bool
) -> RolloutView:
    doing = "pause" if pausing else "resume"
    require_role(actor, "approver", f"{doing} a rollout")
    reason = required_text(reason, "reason")
    status, before = (PAUSED, RUNNING) if pausing else (RUNNING, PAUSED)
    values = {"status": status, "reason": reason}
    change = Change(f"rollout_{doing}d", values, (before,), reason=reason)
    return _change(settings, registry, actor, model, change, doing)


def pause(
    settings: Settings, registry: Registry, actor: Actor, model: str, reason: str
) -> RolloutView:
    """Hold the current stage: no advancing until resumed (a breach still rolls back)."""
    return _hold(settings, registry, actor, model, reason, pausing=True)


def resume(
    settings: Settings, registry: Registry, actor: Actor, model: str, reason: str
) -> RolloutView:
    return _hold(settings, registry, actor, model, reason, pausing=False)


def abort(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    model: str,
    reason: str,
    now: datetime | None = None,
) -> RolloutView:
    """End the rollout: traffic back to the champion, the request rolled back."""
    require_role(actor, "approver", "abort a rollout")
    reason = required_text(reason, "reason")
    change = Change(
        "rollout_aborted",
        {"status": ABORTED, **ended(now or utcnow(), reason)},
        (RUNNING, PAUSED),
        reason=reason,
        request=((ROLLING_OUT,), "rolled_back"),
    )
    return _change(settings, registry, actor, model, change, "abort")


def advance_stage(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    model: str,
    now: datetime | None = None,
) -> TickResult:
    """An approver leaves the current stage, which must be ready: every minimum met and
    every guardrail holding, evaluated now (the way a manual plan advances)."""
    require_role(actor, "approver", "advance a rollout")
    now = now or utcnow()
    view = active_rollout(settings, model)
    with lease(settings, view.id) as held:
        if not held:
            raise ActionRefused(f"A tick is evaluating rollout #{view.id} right now; try again.")
        view = get_rollout(settings, view.id)
        if view.status != RUNNING:
            raise ActionRefused(
                f"Rollout #{view.id} of {model} is {view.status}; cannot advance it."
            )
        evaluation = evaluate(settings, registry, view, now)
        if evaluation.outcome != READY:
            raise ActionRefused(f"Stage {view.stage.name} is not ready: {evaluation.summary}")
        return advance(settings, registry, actor, view, evaluation, now)


def allowed_actions(actor: Actor, view: RolloutView) -> list[str]:
    """The controls the actor may use on the rollout now, for showing buttons."""
    if not holds_role(actor, "approver"):
        return []
    actions = {RUNNING: ["pause", "abort"], PAUSED: ["resume", "abort"]}.get(view.status, [])
    if view.status == RUNNING and not view.plan.auto_advance:
        actions.insert(0, "advance")
    return actions

"""Reconciling MLflow with where the panel left each alias."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import NotFound
from mlops_core.governance.promotion.apply import settle_stopped_apply
from mlops_core.governance.promotion.state import (
    ALIAS_SETTING_ACTIONS,
    APPLYING,
    APPROVED,
    list_requests,
    required_text,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import describe_target, load_policy
from mlops_core.stores import audit
from mlops_core.stores.db import AuditEvent, PromotionRequest, session_factory, utcnow
from mlops_core.stores.registry import Registry


@dataclass(frozen=True)
class ReconcileWarning:
    model: str
    alias: str
    kind: str  # "alias_moved" | "apply_pending"
    message: str
    expected_version: str | None = None
    actual_version: str | None = None
    request_id: int | None = None
    # The audit event that last set the alias through the panel.
    event_id: int | None = None


def _expected_aliases(session: Session) -> dict[tuple[str, str], AuditEvent]:
    """The latest alias-setting event per (model, alias): where the panel left each alias."""
    expected: dict[tuple[str, str], AuditEvent] = {}
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(ALIAS_SETTING_ACTIONS))
        .order_by(AuditEvent.id.desc())
    )
    for event in events:
        key = (event.model_name or "", str((event.details or {}).get("alias", "")))
        expected.setdefault(key, event)
    return expected


def _already_warned(session: Session, warning: ReconcileWarning) -> bool:
    """Whether a warning for this alias was logged since the panel last set it, saying the same."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "reconcile_warning",
            AuditEvent.model_name == warning.model,
            AuditEvent.id > (warning.event_id or 0),
        )
        .order_by(AuditEvent.id.desc())
    )
    for event in events:
        seen = event.details or {}
        if seen.get("alias") == warning.alias:
            return (seen.get("expected_version"), seen.get("actual_version")) == (
                warning.expected_version,
                warning.actual_version,
            )
    return False


def _current_version(registry: Registry, model: str, alias: str) -> str | None:
    try:
        current = registry.version_at(model, alias)
    except NotFound:
        return None
    return current.version if current else None


def _applying(session: Session) -> dict[tuple[str, str], PromotionRequest]:
    requests = session.scalars(select(PromotionRequest).where(PromotionRequest.status == APPLYING))
    return {(r.model_name, r.alias): r for r in requests}


def _moved_aliases(settings: Settings, registry: Registry) -> list[ReconcileWarning]:
    """Aliases that point where neither the panel last set them nor an apply in flight is
    taking them.

    MLflow is read first and the panel database after: an apply commits its claim before
    it moves the alias, so an alias we saw moved by an apply has that apply on record by
    the time we look, as applying or with its `apply` event.
    """
    with session_factory(settings.db_url)() as session:
        pairs = set(_expected_aliases(session)) | set(_applying(session))
    found = {pair: _current_version(registry, *pair) for pair in sorted(pairs)}
    with session_factory(settings.db_url)() as session:
        expected = _expected_aliases(session)
        in_flight = _applying(session)
    warnings = []
    for (model, alias), version in found.items():
        request = in_flight.get((model, alias))
        if request is not None and version in (request.champion_version, request.version):
            continue
        event = expected.get((model, alias))
        if event is None or version == event.version:
            continue
        warnings.append(
            ReconcileWarning(
                model=model,
                alias=alias,
                kind="alias_moved",
                message=f"The {describe_target(alias)} of {model} points at "
                f"{'v' + version if version else 'nothing'}, but the panel last set it to "
                f"v{event.version} ({event.action} #{event.id}): it was moved outside the panel.",
                expected_version=event.version,
                actual_version=version,
                request_id=event.request_id,
                event_id=event.id,
            )
        )
    return warnings


def reconcile(
    settings: Settings, registry: Registry, now: datetime | None = None
) -> list[ReconcileWarning]:
    """Compare MLflow with where the panel left each alias; list what disagrees.

    First every apply that stopped half-way is settled (`settle_stopped_apply`): completed
    when the alias already moved, made retryable or stale once it is no longer in flight.
    An alias moved outside the panel is logged once as a "reconcile_warning" audit event;
    approved requests whose apply failed are listed for a retry.
    """
    now = now or utcnow()
    for request in list_requests(settings, statuses=(APPLYING,)):
        settle_stopped_apply(settings, registry, request, now)
    warnings = _moved_aliases(settings, registry)
    staged = load_policy(settings.policy_file).rollout_plan
    for request in list_requests(settings, statuses=(APPROVED,)):
        if request.last_error is None and staged(request.model_name) is not None:
            continue  # waits for its staged rollout to start, as it should
        warnings.append(
            ReconcileWarning(
                model=request.model_name,
                alias=request.alias,
                kind="apply_pending",
                message=f"Request #{request.id} (v{request.version}) is approved but not applied"
                + (f": {request.last_error}" if request.last_error else "")
                + ". Retry the apply or cancel it.",
                expected_version=request.version,
                request_id=request.id,
            )
        )
    for warning in warnings:
        if warning.kind == "alias_moved":
            _log_warning(settings, warning)
    return warnings


def _log_warning(settings: Settings, warning: ReconcileWarning) -> None:
    def work(session: Session) -> None:
        if _already_warned(session, warning):
            return
        audit.append(
            session,
            audit.SYSTEM,
            "reconcile_warning",
            model=warning.model,
            version=warning.actual_version,
            request_id=warning.request_id,
            reason=warning.message,
            details={
                "alias": warning.alias,
                "expected_version": warning.expected_version,
                "actual_version": warning.actual_version,
            },
        )

    audit.atomic(settings, work)


def accept_alias(
    settings: Settings, registry: Registry, actor: Actor, model: str, alias: str, reason: str
) -> str | None:
    """An admin accepts where an alias points now, after a move outside the panel."""
    require_role(actor, "admin", "accept an alias moved outside the panel")
    reason = required_text(reason, "reason")
    current = registry.version_at(model, alias)
    found = current.version if current else None
    audit.record(
        settings,
        actor,
        "alias_accepted",
        model=model,
        version=found,
        reason=reason,
        details={"alias": alias},
    )
    return found

"""Gate evidence of a version before anyone requests it.

When a version is registered (an MLflow webhook, or the worker polling the registry) its
gates are evaluated and kept as a `gates_evaluated` audit event with stage "registered":
the whole results, evidence included, so reviewers read them on the Models page without
anyone clicking. Gates are evaluated again at request and at every decision; this is the
record of what they said when the version appeared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.governance.gates import GateResult, evaluate_gates, results_from_json, summarize
from mlops_core.governance.promotion.state import gate_event, gates_json
from mlops_core.identity import Actor
from mlops_core.stores import audit
from mlops_core.stores.db import AuditEvent, session_factory
from mlops_core.stores.registry import Registry

GATES_EVALUATED = "gates_evaluated"
REGISTERED = "registered"


@dataclass(frozen=True)
class StoredGates:
    model: str
    version: str
    evaluated_at: datetime
    trigger: str
    results: list[GateResult]
    policy_source: str | None
    event_id: int

    @property
    def summary(self) -> str:
        return summarize(self.results)


def _latest_event(session: Session, model: str, version: str) -> AuditEvent | None:
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == GATES_EVALUATED,
            AuditEvent.model_name == model,
            AuditEvent.version == version,
        )
        .order_by(AuditEvent.id.desc())
    )
    return next((e for e in events if (e.details or {}).get("stage") == REGISTERED), None)


def stored_gates(db_url: str, model: str, version: str) -> StoredGates | None:
    """The gates evaluated when the version was registered (the latest such record)."""
    with session_factory(db_url)() as session:
        event = _latest_event(session, model, version)
        if event is None:
            return None
        details = event.details or {}
        return StoredGates(
            model=model,
            version=version,
            evaluated_at=event.created_at,
            trigger=str(details.get("trigger", "")),
            results=results_from_json(details.get("results")),
            policy_source=details.get("policy_source"),
            event_id=event.id,
        )


def record_version_gates(
    settings: Settings,
    registry: Registry,
    actor: Actor,
    model: str,
    version: str,
    trigger: str,
    *,
    again: bool = False,
) -> StoredGates | None:
    """Evaluate the version's gates and keep them; None when they were kept before (unless
    `again`: a tag that evidence reads was set)."""
    if not again and stored_gates(settings.db_url, model, version) is not None:
        return None
    report = evaluate_gates(settings, registry, model, version)
    details = {
        **gate_event(report, REGISTERED),
        "trigger": trigger,
        "results": gates_json(report.results),
    }
    audit.atomic(
        settings,
        lambda session: audit.append(
            session, actor, GATES_EVALUATED, model=model, version=version, details=details
        ),
    )
    return stored_gates(settings.db_url, model, version)

"""The jobs the worker runs on schedule, one line each in `JOBS`.

Adding a job is one entry: a name (the key of the policy's `[schedule]`), its default
interval, the function and a line of description.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.evidence.behaviour.run import run_checks
from mlops_core.evidence.behaviour.store import log_check_report, stored_check_report
from mlops_core.evidence.monitoring import (
    check_model_drift,
    drift_history,
    drift_report,
    log_drift_check,
)
from mlops_core.evidence.quality_runs import (
    latest_quality_status,
    log_quality_check,
    run_quality_check,
)
from mlops_core.governance.promotion.reconcile import reconcile
from mlops_core.governance.promotion.state import open_requests
from mlops_core.notifications import load_notifications
from mlops_core.policy import load_policy
from mlops_core.rollout.progress import tick_all
from mlops_core.stores import audit
from mlops_core.stores.db import AuditEvent, session_factory, utcnow
from mlops_core.stores.model_data import current_bounds
from mlops_core.stores.outbox import EVENT_NAMES
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import weekly_windows
from mlops_core.worker.delivery import deliver_due
from mlops_core.worker.reactions import WORKER, poll_registry
from mlops_core.worker.schedule import Job, JobContext

DRIFT_ALERT = "drift_alert"
QUALITY_ALERT = "quality_alert"
CHAIN_BROKEN = "audit_chain_broken"


def latest_complete_week(
    bounds: tuple[datetime, datetime], now: datetime
) -> tuple[datetime, datetime] | None:
    """The newest calendar week of the data that has ended by `now`."""
    ended = [week for week in weekly_windows(*bounds) if week[1] <= now]
    return ended[-1] if ended else None


def _check_drift(context: JobContext, registry: Registry, model: str) -> str:
    settings = context.settings
    policy = load_policy(settings.policy_file).for_model(model)
    if not policy.data.has_current:
        return f"{model}: no current data configured"
    bounds = current_bounds(settings, policy.data)
    week = latest_complete_week(bounds, utcnow()) if bounds else None
    if week is None:
        return f"{model}: no complete window yet"
    history = drift_history(registry, model)
    if (history["window_start"] == week[0]).any():
        return f"{model}: window {week[0]:%Y-%m-%d} already checked"
    check = check_model_drift(settings, registry, model, window=week)
    run_id = log_drift_check(settings, registry, check, drift_report(check), WORKER)
    verdict = check.verdict
    if verdict.drifted:
        audit.record(
            settings,
            WORKER,
            DRIFT_ALERT,
            model=model,
            version=check.reference_version,
            reason=f"Window {week[0]:%Y-%m-%d} to {week[1]:%Y-%m-%d}: "
            f"{check.result.drift_share:.0%} of columns drifted ({verdict.rule}).",
            details={
                "run_id": run_id,
                "window_start": week[0].isoformat(),
                "window_end": week[1].isoformat(),
                "drift_share": check.result.drift_share,
                "drifted_columns": check.result.drifted_columns,
                **verdict.to_dict(),
            },
        )
    return f"{model}: {'drifted' if verdict.drifted else 'no drift'} (run {run_id})"


def for_each_covered_model(
    context: JobContext, check: Callable[[JobContext, Registry, str], str]
) -> str:
    """Run `check` for every registered model the policy covers; one model's failure (a
    broken data source) does not keep the others unchecked, and fails the run after them."""
    settings = context.settings
    registry = Registry(settings.tracking_uri)
    policy = load_policy(settings.policy_file)
    lines, errors = [], []
    for model in registry.model_names():
        if not policy.covers(model):
            continue
        try:
            lines.append(check(context, registry, model))
        except MlopsError as exc:
            errors.append(f"{model}: {exc}")
    if errors:
        raise MlopsError("; ".join(errors + lines))
    return "; ".join(lines) or "no covered models"


def run_drift(context: JobContext) -> str:
    """Check and log the latest complete week of each covered model's current data."""
    return for_each_covered_model(context, _check_drift)


def _check_quality(context: JobContext, registry: Registry, model: str) -> str:
    settings = context.settings
    policy = load_policy(settings.policy_file).for_model(model)
    if policy.monitoring is None or not policy.data.has_current:
        return f"{model}: no [monitoring] or inference log configured"
    report = run_quality_check(settings, model, log=False, registry=registry)
    last = latest_quality_status(registry, model)
    # Labels arrive over days: a check is logged (and an alert announced) when what it says
    # changed, not every six hours.
    if last is not None and last.summary == report.summary:
        return f"{model}: {report.status}, unchanged since run {last.run_id}"
    run_id = log_quality_check(settings, registry, report, WORKER)
    if report.status == "alert":
        audit.record(
            settings,
            WORKER,
            QUALITY_ALERT,
            model=model,
            version=report.alerts[0].version,
            reason=report.summary,
            details={"run_id": run_id, "alerts": [a.message for a in report.alerts]},
        )
    return f"{model}: {report.status} (run {run_id})"


def run_quality(context: JobContext) -> str:
    """Assess each covered model's inference log once labels arrive; log what changed."""
    return for_each_covered_model(context, _check_quality)


def versions_to_check(settings: Settings, registry: Registry) -> list[tuple[str, str]]:
    """The versions a decision may soon need checks for: those of open requests and the
    newest of each model, of models whose policy has a [checks] table (the policy's consent
    to running their code on the worker's machine)."""
    policy = load_policy(settings.policy_file)
    wanted = [(r.model_name, r.version) for r in open_requests(settings)]
    for model in registry.model_names():
        versions = [v.version for v in registry.list_versions(model)]
        if versions:
            wanted.append((model, max(versions, key=int)))
    return [
        (model, version)
        for model, version in dict.fromkeys(wanted)
        if policy.covers(model) and policy.for_model(model).checks is not None
    ]


def _check_behaviour(settings: Settings, model: str, version: str) -> str:
    stored = stored_check_report(settings, model, version)
    if stored.report is not None:
        return f"{model} v{version}: checked {stored.report.created_at}"
    # No report, or one whose bytes the panel did not record: run them (again).
    report = run_checks(settings, model, version)
    log_check_report(settings, report, WORKER)
    if not report.completed:
        return f"{model} v{version}: sandbox failed ({report.failure})"
    failed = [o.name for o in report.outcomes if o.status == "failed"]
    return f"{model} v{version}: checked" + (f", failed {', '.join(failed)}" if failed else "")


def run_behaviour_checks(context: JobContext) -> str:
    """Run and log the behaviour checks of the versions `versions_to_check` names that have
    no stored report; one version's failure does not keep the others unchecked."""
    settings = context.settings
    registry = Registry(settings.tracking_uri)
    lines, errors = [], []
    for model, version in versions_to_check(settings, registry):
        try:
            lines.append(_check_behaviour(settings, model, version))
        except MlopsError as exc:
            errors.append(f"{model} v{version}: {exc}")
    if errors:
        raise MlopsError("; ".join(errors + lines))
    return "; ".join(lines) or "no versions under a [checks] policy"


def run_reconcile(context: JobContext) -> str:
    warnings = reconcile(context.settings, Registry(context.settings.tracking_uri))
    return f"{len(warnings)} warning(s)"


def run_poll(context: JobContext) -> str:
    return poll_registry(context.settings, Registry(context.settings.tracking_uri))


def run_rollout_tick(context: JobContext) -> str:
    """Move every running rollout on, or back, as its inference log says."""
    results = tick_all(context.settings)
    return "; ".join(f"{r.model} #{r.rollout_id}: {r.outcome}" for r in results) or "no rollouts"


def run_notifications(context: JobContext) -> str:
    config = load_notifications(context.settings, EVENT_NAMES)
    return deliver_due(context.settings.db_url, config, context.worker).summary


def _reported(db_url: str, details: dict) -> bool:
    with session_factory(db_url)() as session:
        last = session.scalar(
            select(AuditEvent.details)
            .where(AuditEvent.action == CHAIN_BROKEN)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    return last == details


def run_audit_verify(context: JobContext) -> str:
    """Verify the audit chain; a break is announced once (until it changes)."""
    status = audit.verify(context.settings)
    if status.ok:
        return status.summary
    details = {"first_broken_id": status.first_broken_id, "reason": status.reason}
    if not _reported(context.settings.db_url, details):
        audit.record(context.settings, WORKER, CHAIN_BROKEN, reason=status.summary, details=details)
    raise MlopsError(status.summary)


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("notifications", "10s", run_notifications, "deliver notifications from the outbox"),
        Job("reconcile", "5m", run_reconcile, "compare MLflow's aliases with the panel"),
        Job("registry_poll", "1m", run_poll, "gates of new versions, aliases moved outside"),
        Job("drift", "6h", run_drift, "drift of each model's latest complete week, logged"),
        Job("quality", "6h", run_quality, "production quality once labels arrive, logged"),
        Job("checks", "1h", run_behaviour_checks, "behaviour checks of versions awaiting use"),
        Job("audit_verify", "15m", run_audit_verify, "verify the audit chain"),
        Job("rollout_tick", "1m", run_rollout_tick, "move staged rollouts on or roll them back"),
    )
}

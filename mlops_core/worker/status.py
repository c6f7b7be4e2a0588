"""What the System page shows: each job's last and next run, and the delivery log, with
the one action on it (an admin's resend)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import NotFound
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.policy import load_policy
from mlops_core.stores import audit, deliveries, job_runs
from mlops_core.stores.db import utcnow
from mlops_core.stores.job_runs import RunRecord
from mlops_core.worker.schedule import Job, intervals, next_due, slot_of


@dataclass(frozen=True)
class JobStatus:
    name: str
    description: str
    # "5m", "off": as the policy's [schedule] (or the default) says.
    every: str
    last_run: RunRecord | None
    next_due: datetime | None


def job_statuses(
    settings: Settings, jobs: Mapping[str, Job], now: datetime | None = None
) -> list[JobStatus]:
    """Each job with its schedule, its latest run and when it is due next."""
    now = now or utcnow()
    policy = load_policy(settings.policy_file)
    every = intervals(policy, jobs)
    last = job_runs.last_runs(settings.db_url, jobs)
    statuses = []
    for name, job in jobs.items():
        seconds = every[name]
        in_slot = (
            job_runs.latest_in_slot(settings.db_url, name, slot_of(now, seconds))
            if seconds
            else None
        )
        statuses.append(
            JobStatus(
                name=name,
                description=job.description,
                every=policy.schedule.get(name, job.default_every),
                last_run=last.get(name),
                next_due=next_due(now, seconds, in_slot, job.retry),
            )
        )
    return statuses


def resend(settings: Settings, actor: Actor, delivery_id: int) -> None:
    """Queue a delivery to be sent again now (same idempotency key); an admin's action."""
    require_role(actor, "admin", "resend a notification")

    def work(session: Session) -> None:
        if not deliveries.requeue(session, delivery_id, utcnow()):
            raise NotFound(f"There is no delivery #{delivery_id}.")
        audit.append(
            session,
            actor,
            "notification_resent",
            reason=f"delivery #{delivery_id}",
            details={"delivery_id": delivery_id},
        )

    audit.atomic(settings, work)

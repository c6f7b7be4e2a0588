"""The worker's jobs and when each is due.

A job is a name, a default interval and a callable; the policy's `[schedule]` table may
set another interval (`reconcile = "5m"`) or switch it off (`drift = "off"`). Time is cut
into slots of the interval from the Unix epoch, the same for every worker, so "the run of
this slot" means one run however many workers there are (`stores.job_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlops_core.config import Settings
from mlops_core.errors import ConfigError
from mlops_core.policy import Policy, duration_seconds
from mlops_core.stores.job_runs import RetryRule, RunRecord
from mlops_core.stores.worker_tables import FAILED, OK, RUNNING


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    worker: str


@dataclass(frozen=True)
class Job:
    name: str
    # The interval when the policy's [schedule] does not name the job ("5m", "off").
    default_every: str
    # Runs the job once; returns a one-line summary, raises when the run failed.
    run: Callable[[JobContext], str]
    description: str
    retry: RetryRule = RetryRule()


def epoch_seconds(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _naive(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def slot_of(now: datetime, every_seconds: int) -> datetime:
    """The start of the slot `now` (naive UTC) falls in."""
    return _naive(epoch_seconds(now) // every_seconds * every_seconds)


def intervals(policy: Policy, jobs: Mapping[str, Job]) -> dict[str, int | None]:
    """Seconds between runs of each job (None: off); the policy names only known jobs."""
    unknown = sorted(set(policy.schedule) - set(jobs))
    if unknown:
        raise ConfigError(
            f"Policy file {policy.source}: [schedule] names unknown job(s) {unknown}; the "
            f"jobs are {', '.join(jobs)}."
        )
    return {
        name: duration_seconds(policy.schedule.get(name, job.default_every))
        for name, job in jobs.items()
    }


def next_due(
    now: datetime, every_seconds: int | None, latest: RunRecord | None, rule: RetryRule
) -> datetime | None:
    """When the job runs next: now if its slot has not run, a retry time after a failure,
    else the next slot; None when it is off."""
    if every_seconds is None:
        return None
    slot = slot_of(now, every_seconds)
    following = slot + timedelta(seconds=every_seconds)
    if latest is None or latest.slot != slot:
        return now
    if latest.outcome == OK or latest.attempt >= rule.max_attempts:
        return following
    if latest.outcome == RUNNING:
        return latest.started_at + rule.stale_after
    if latest.outcome == FAILED:
        finished = latest.finished_at or latest.started_at
        return min(finished + rule.delay(latest.attempt), following)
    return now

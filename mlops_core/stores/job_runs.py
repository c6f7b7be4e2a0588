"""Runs of the worker's scheduled jobs: claimed once per slot, recorded, retried.

A job's schedule cuts time into slots (every 5 minutes from the epoch, say). A worker that
finds a slot due inserts its run as (job, slot, attempt); the unique constraint lets
exactly one of several workers win, on SQLite and PostgreSQL alike, so a job runs once
per slot however many workers there are. A failed run is tried again in the same slot
after a back-off that doubles with each attempt, up to `max_attempts`; a run whose worker
died (still "running" after `stale_after`) is marked abandoned and may be taken over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mlops_core.stores.db import session_factory
from mlops_core.stores.worker_tables import ABANDONED, FAILED, OK, RUNNING, JobRun

MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class RetryRule:
    """How a failed slot is tried again: after base, 2 x base, 4 x base... up to `cap`."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(minutes=30)
    # A run still "running" this long after it started has lost its worker.
    stale_after: timedelta = timedelta(minutes=30)

    def delay(self, attempt: int) -> timedelta:
        return min(self.base * 2 ** (attempt - 1), self.cap)


@dataclass(frozen=True)
class RunRecord:
    id: int
    job: str
    slot: datetime
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: str | None
    error: str | None


def _record(run: JobRun) -> RunRecord:
    return RunRecord(
        id=run.id,
        job=run.job,
        slot=run.slot,
        attempt=run.attempt,
        worker=run.worker,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,
        summary=run.summary,
        error=run.error,
    )


def _next_attempt(latest: JobRun | None, now: datetime, rule: RetryRule) -> int | None:
    """The attempt to start in this slot now, or None: done, running, waiting or given up."""
    if latest is None:
        return 1
    if latest.outcome == OK or latest.attempt >= rule.max_attempts:
        return None
    if latest.outcome == RUNNING:
        return latest.attempt + 1 if latest.started_at <= now - rule.stale_after else None
    finished = latest.finished_at or latest.started_at
    return latest.attempt + 1 if now >= finished + rule.delay(latest.attempt) else None


def claim(
    db_url: str, job: str, slot: datetime, worker: str, now: datetime, rule: RetryRule
) -> RunRecord | None:
    """Start the job's run for `slot` unless it ran, runs, waits to retry or another worker
    just claimed it; the run returned is committed as running."""
    sessions = session_factory(db_url)
    try:
        with sessions.begin() as session:
            latest = session.scalar(
                select(JobRun)
                .where(JobRun.job == job, JobRun.slot == slot)
                .order_by(JobRun.attempt.desc())
                .limit(1)
            )
            attempt = _next_attempt(latest, now, rule)
            if attempt is None:
                return None
            if latest is not None and latest.outcome == RUNNING:
                session.execute(
                    update(JobRun)
                    .where(JobRun.id == latest.id, JobRun.outcome == RUNNING)
                    .values(outcome=ABANDONED, finished_at=now, error="its worker stopped")
                )
            run = JobRun(
                job=job, slot=slot, attempt=attempt, worker=worker, started_at=now, outcome=RUNNING
            )
            session.add(run)
            session.flush()
            return _record(run)
    except IntegrityError:
        # Another worker inserted this attempt first: it is theirs.
        return None


def finish(
    db_url: str, run_id: int, now: datetime, *, summary: str | None, error: str | None
) -> None:
    with session_factory(db_url).begin() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.outcome == RUNNING)
            .values(
                outcome=FAILED if error else OK,
                finished_at=now,
                summary=summary,
                error=None if error is None else error[:MAX_ERROR_CHARS],
            )
        )


def latest_in_slot(db_url: str, job: str, slot: datetime) -> RunRecord | None:
    with session_factory(db_url)() as session:
        run = session.scalar(
            select(JobRun)
            .where(JobRun.job == job, JobRun.slot == slot)
            .order_by(JobRun.attempt.desc())
            .limit(1)
        )
        return _record(run) if run else None


def last_runs(db_url: str, jobs: Iterable[str]) -> dict[str, RunRecord]:
    """Each job's most recent run (any outcome)."""
    found: dict[str, RunRecord] = {}
    with session_factory(db_url)() as session:
        for job in jobs:
            run = session.scalar(
                select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1)
            )
            if run is not None:
                found[job] = _record(run)
    return found


def last_successes(db_url: str) -> dict[str, datetime]:
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(JobRun.job, func.max(JobRun.finished_at))
            .where(JobRun.outcome == OK)
            .group_by(JobRun.job)
        )
        return {job: finished for job, finished in rows}


def outcome_counts(db_url: str) -> dict[tuple[str, str], int]:
    """(job, outcome) -> how many runs, for /metrics."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(JobRun.job, JobRun.outcome, func.count()).group_by(JobRun.job, JobRun.outcome)
        )
        return {(job, outcome): count for job, outcome, count in rows}


def recent_runs(db_url: str, limit: int = 50) -> list[RunRecord]:
    with session_factory(db_url)() as session:
        runs = session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(limit))
        return [_record(run) for run in runs]


def runs_of(db_url: str, job: str) -> list[RunRecord]:
    with session_factory(db_url)() as session:
        runs = session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id))
        return [_record(run) for run in runs]

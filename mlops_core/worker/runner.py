"""The worker's loop: every tick, claim each job whose slot is due and run it in its own
thread, so a slow drift check never holds back notifications and a failing job never
stops the others. Registry events from webhooks are handled on a queue of their own.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mlops_core.config import Settings
from mlops_core.errors import ConfigError
from mlops_core.policy import load_policy
from mlops_core.redaction import redact
from mlops_core.stores import job_runs
from mlops_core.stores.db import utcnow
from mlops_core.stores.registry import Registry
from mlops_core.worker.reactions import RegistryEvent, react
from mlops_core.worker.schedule import Job, JobContext, intervals, slot_of

log = logging.getLogger("mlops_core.worker")
TICK_SECONDS = 1.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Worker:
    settings: Settings
    jobs: Mapping[str, Job]
    name: str = field(default_factory=worker_id)
    events: queue.Queue[RegistryEvent] = field(default_factory=queue.Queue)
    stopping: threading.Event = field(default_factory=threading.Event)
    _running: dict[str, Future] = field(default_factory=dict)
    _every: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A schedule naming an unknown job stops the worker at start, with the reason.
        self._every = intervals(load_policy(self.settings.policy_file), self.jobs)
        self._pool = ThreadPoolExecutor(max_workers=len(self.jobs), thread_name_prefix="job")

    def _schedule(self) -> dict[str, int | None]:
        """The policy's schedule, re-read each tick; a broken edit keeps the last good one."""
        try:
            self._every = intervals(load_policy(self.settings.policy_file), self.jobs)
        except ConfigError as exc:
            log.error("Keeping the previous schedule: %s", exc)
        return self._every

    def _run(self, job: Job, run: job_runs.RunRecord) -> None:
        error = summary = None
        try:
            summary = job.run(JobContext(self.settings, self.name))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            error = redact(f"{type(exc).__name__}: {exc}")
            log.warning("Job %s failed (attempt %s): %s", job.name, run.attempt, error)
        job_runs.finish(self.settings.db_url, run.id, utcnow(), summary=summary, error=error)

    def tick(self) -> list[str]:
        """Start every job whose slot is due and that is not running here; their names."""
        started = []
        for name, every in self._schedule().items():
            previous = self._running.get(name)
            if every is None or (previous is not None and not previous.done()):
                continue
            now = utcnow()
            job = self.jobs[name]
            run = job_runs.claim(
                self.settings.db_url, name, slot_of(now, every), self.name, now, job.retry
            )
            if run is not None:
                self._running[name] = self._pool.submit(self._run, job, run)
                started.append(name)
        return started

    def _handle_events(self) -> None:
        registry = Registry(self.settings.tracking_uri)
        while not self.stopping.is_set():
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                log.info(
                    "%s %s: %s", event.event, event.model, react(self.settings, registry, event)
                )
            except Exception as exc:  # noqa: BLE001 - the poll job catches up on what failed
                log.warning("Reacting to %s failed: %s", event.event, redact(str(exc)))

    def serve(self) -> None:
        """Tick until `stopping` is set; then wait for the running jobs."""
        handler = threading.Thread(target=self._handle_events, name="registry-events", daemon=True)
        handler.start()
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the worker
                log.error("Scheduling failed: %s", redact(str(exc)))
            self.stopping.wait(TICK_SECONDS)
        self._pool.shutdown(wait=True)
        handler.join(timeout=5)

"""/metrics: the worker's state in the Prometheus text format (prometheus-client).

Read from the panel database at each scrape, so every worker reports the same numbers for
the whole deployment: runs per job and outcome, each job's last success, the notification
queue and delivery failures.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from mlops_core.stores import deliveries, job_runs
from mlops_core.stores.worker_tables import FAILED, OK
from mlops_core.worker.schedule import epoch_seconds


class WorkerCollector(Collector):
    def __init__(self, db_url: str, jobs: list[str]) -> None:
        self.db_url = db_url
        self.jobs = jobs

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = job_runs.outcome_counts(self.db_url)
        runs = CounterMetricFamily("mlops_worker_job_runs", "Finished job runs", labels=["job"])
        failed = CounterMetricFamily(
            "mlops_worker_job_failures", "Job runs that failed", labels=["job"]
        )
        success = GaugeMetricFamily(
            "mlops_worker_job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix time)",
            labels=["job"],
        )
        successes = job_runs.last_successes(self.db_url)
        for job in self.jobs:
            runs.add_metric([job], counts.get((job, OK), 0) + counts.get((job, FAILED), 0))
            failed.add_metric([job], counts.get((job, FAILED), 0))
            if job in successes:
                success.add_metric([job], epoch_seconds(successes[job]))
        stats = deliveries.queue_stats(self.db_url)
        queue = GaugeMetricFamily(
            "mlops_notification_queue_depth",
            "Notifications waiting: deliveries pending and events not yet fanned out",
        )
        queue.add_metric([], stats.pending + stats.undistributed)
        delivery_failures = CounterMetricFamily(
            "mlops_notification_delivery_failures", "Delivery attempts that failed"
        )
        delivery_failures.add_metric([], stats.failed_attempts)
        gave_up = GaugeMetricFamily(
            "mlops_notification_deliveries_given_up", "Deliveries whose attempts ran out"
        )
        gave_up.add_metric([], stats.gave_up)
        yield from (runs, failed, success, queue, delivery_failures, gave_up)


def worker_registry(db_url: str, jobs: list[str]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(db_url, jobs))
    return registry

"""Quality checks of a model's inference log under its policy, and their history in MLflow.

`run_quality_check` is the one entry point the CLI, the Quality page, the demo and a
scheduled worker call. Logged, a check is one run of ``monitoring/<model>`` (tag
``mlops.monitoring = quality``):

- params: model, task, champion, challenger, versions, window_days, label_delay_days,
  period start / end, as of, comparison mode;
- metrics per window: ``v<version>.<metric>``, ``v<version>.label_coverage`` and
  ``v<version>.labelled_rows`` with step = the window's number and the window start as
  timestamp, so MLflow charts them over windows; ``alerts``; and for the live comparison
  over the period ``live.<metric>.difference`` / ``.ci_low`` / ``.ci_high``;
- tags ``mlops.quality.status`` (alert / ok / not evaluated) and ``mlops.quality.summary``;
- artifact ``quality/report.json`` (the whole report), its digest in the audit log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from mlflow.entities import Metric, Param, RunTag

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, MlopsError, NotFound
from mlops_core.evidence.inference_log import LogColumns
from mlops_core.evidence.monitoring import (
    KIND_TAG,
    MAX_PARAM_CHARS,
    MonitoringRun,
    _monitoring_runs,
    store_monitoring_run,
)
from mlops_core.evidence.quality import (
    OFFLINE_NAMES,
    QualityReport,
    QualitySpec,
    VersionEvidence,
    assess_quality,
    period_end,
)
from mlops_core.evidence.quality_metrics import task_metrics
from mlops_core.evidence.task import detect_task
from mlops_core.identity import Actor
from mlops_core.people.access import require_evidence_writer
from mlops_core.policy import LiveComparisonPolicy, ModelPolicy, MonitoringPolicy, load_policy
from mlops_core.stores.audit import json_safe
from mlops_core.stores.data_discovery import find_data
from mlops_core.stores.model_data import current_bounds, load_current
from mlops_core.stores.registry import Registry

STATUS_TAG = "mlops.quality.status"
SUMMARY_TAG = "mlops.quality.summary"
QUALITY_KIND = "quality"


def quality_spec(
    registry: Registry, policy: ModelPolicy, model: str, champion: str | None, version: str | None
) -> QualitySpec:
    monitoring = policy.monitoring or MonitoringPolicy()
    reference = version or champion
    task = (
        detect_task(registry, policy, model, reference).task
        if reference
        else policy.task or "classification"
    )
    return QualitySpec(
        task=task,
        columns=LogColumns.of(policy.data, monitoring),
        monitoring=monitoring,
        live=policy.live_comparison or LiveComparisonPolicy(),
        champion=champion,
        version=version,
    )


def version_evidence(
    registry: Registry, policy: ModelPolicy, model: str, version: str, task: str
) -> VersionEvidence:
    """The version's offline metrics (its run) and evaluation set, or why it is missing."""
    found = registry.get_version(model, version)
    offline: dict[str, float] = {}
    if found.run_id:
        logged = registry.get_run(found.run_id).metrics
        for metric in task_metrics(task):
            name = next((n for n in (metric, *OFFLINE_NAMES.get(metric, ())) if n in logged), None)
            if name is not None:
                offline[metric] = float(logged[name])
    try:
        evaluation = find_data(registry, policy, found, "evaluation").loaded.frame
    except MlopsError as exc:
        return VersionEvidence(offline, None, str(exc))
    return VersionEvidence(offline, evaluation)


def run_quality_check(
    settings: Settings,
    model: str,
    version: str | None = None,
    window: tuple[datetime | None, datetime | None] | None = None,
    log: bool = True,
    actor: Actor | None = None,
    as_of: datetime | None = None,
    registry: Registry | None = None,
) -> QualityReport:
    """Assess the model's inference log under its policy; logged to MLflow when `log`.

    `window` limits the rows to ``start <= timestamp < end`` (an open end: the log's first
    or last row); `version` limits the windows to one version and makes it the challenger.
    `as_of` (default now) decides which windows' labels are complete. Logging is a write:
    it needs `actor`, a role above viewer.
    """
    if log:
        if actor is None:
            raise InvalidInput("Logging a quality check needs the person who logs it.")
        require_evidence_writer(actor, "log a quality check to MLflow")
    registry = registry or Registry(settings.tracking_uri)
    full_policy = load_policy(settings.policy_file)
    policy = full_policy.for_model(model)
    champion_info = registry.serving_version(full_policy, model)
    champion = champion_info.version if champion_info else None
    if version is not None:
        registry.get_version(model, version)
    spec = quality_spec(registry, policy, model, champion, version)
    period = _period(settings, policy, window)
    loaded = load_current(settings, policy.data, *period)
    if loaded.frame.empty:
        raise InvalidInput(f"The inference log has no rows in {loaded.description}.")
    spec.columns.require(loaded.frame)
    versions = sorted(set(loaded.frame[spec.columns.version].astype(str)))
    evidence = {v: version_evidence(registry, policy, model, v, spec.task) for v in versions}
    moment = as_of or datetime.now(UTC).replace(tzinfo=None)
    report = assess_quality(model, loaded.frame, spec, evidence, period, moment)
    if log:
        assert actor is not None
        log_quality_check(settings, registry, report, actor)
    return report


def _period(
    settings: Settings, policy: ModelPolicy, window: tuple[datetime | None, datetime | None] | None
) -> tuple[datetime, datetime]:
    bounds = current_bounds(settings, policy.data)
    if bounds is None:
        raise NotFound("The inference log has no rows yet.")
    start, end = window or (None, None)
    first = bounds[0].replace(hour=0, minute=0, second=0, microsecond=0)
    return (start or first, end or period_end(bounds[1]))


def log_quality_check(
    settings: Settings, registry: Registry, report: QualityReport, actor: Actor
) -> str:
    """Store the report as a run of ``monitoring/<model>``; returns the run id (nothing is
    left half-written when it fails: `store_monitoring_run`)."""
    require_evidence_writer(actor, "log a quality check to MLflow")
    content = json.dumps(json_safe(report.to_dict()), indent=2, allow_nan=False)
    return store_monitoring_run(
        settings,
        registry,
        actor,
        MonitoringRun(
            model=report.model,
            version=report.champion or "",
            name=f"quality {report.period_start:%Y-%m-%d} to {report.period_end:%Y-%m-%d}",
            artifact_dir="quality",
            files={"report.json": content.encode("utf-8")},
            metrics=_metrics(report),
            params=_params(report),
            tags=_tags(report),
        ),
        "the quality check",
    )


def _metrics(report: QualityReport) -> list[Metric]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    starts = sorted({w.start for w in report.windows})
    step_of = {start: step for step, start in enumerate(starts)}
    found = [Metric("alerts", float(len(report.alerts)), now, 0)]
    for w in report.windows:
        stamp = int(w.start.replace(tzinfo=UTC).timestamp() * 1000)
        values = {"label_coverage": w.coverage, "labelled_rows": float(w.labelled), **w.metrics}
        # MLflow metric names allow letters, digits and _ - . space / only.
        prefix = "v" + re.sub(r"[^\w\-. /]", "_", w.version)
        found += [
            Metric(f"{prefix}.{name}", float(value), stamp, step_of[w.start])
            for name, value in values.items()
            if pd.notna(value)
        ]
    if report.comparison is not None:
        for m in report.comparison.metrics:
            for key, value in (
                ("difference", m.difference),
                ("ci_low", m.ci_low),
                ("ci_high", m.ci_high),
            ):
                if pd.notna(value):
                    found.append(Metric(f"live.{m.metric}.{key}", float(value), now, 0))
    return found


def _params(report: QualityReport) -> list[Param]:
    values = {
        "model": report.model,
        "task": report.task,
        "champion": report.champion or "",
        "challenger": report.challenger or "",
        "versions": ",".join(report.versions),
        "window_days": report.monitoring.window_days,
        "label_delay_days": report.monitoring.label_delay_days,
        "period_start": report.period_start.isoformat(sep=" "),
        "period_end": report.period_end.isoformat(sep=" "),
        "as_of": report.as_of.isoformat(sep=" ", timespec="seconds"),
        "comparison_mode": report.comparison.mode if report.comparison else "",
    }
    return [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in values.items()]


def _tags(report: QualityReport) -> list[RunTag]:
    return [
        RunTag(KIND_TAG, QUALITY_KIND),
        RunTag(STATUS_TAG, report.status),
        RunTag(SUMMARY_TAG, report.summary[:MAX_PARAM_CHARS]),
    ]


@dataclass(frozen=True)
class QualityStatus:
    """The latest logged quality check of a model, for the overview."""

    model: str
    status: str
    summary: str
    run_id: str
    logged_at: datetime

    @property
    def label(self) -> str:
        return self.summary or self.status


def quality_history(registry: Registry, model: str) -> pd.DataFrame:
    """Logged quality checks, newest first: run_id, logged_at, status, summary, period."""
    runs = _monitoring_runs(registry, model, QUALITY_KIND)
    if runs.empty:
        return pd.DataFrame(
            columns=["run_id", "logged_at", "status", "summary", "period_start", "period_end"]
        )
    history = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "logged_at": runs["start_time"],
            "status": runs[f"tags.{STATUS_TAG}"],
            "summary": runs[f"tags.{SUMMARY_TAG}"].fillna(""),
            "period_start": runs["params.period_start"],
            "period_end": runs["params.period_end"],
        }
    )
    return history.sort_values("logged_at", ascending=False, kind="stable").reset_index(drop=True)


def latest_quality_status(registry: Registry, model: str) -> QualityStatus | None:
    history = quality_history(registry, model)
    if history.empty:
        return None
    latest = history.iloc[0]
    return QualityStatus(
        model=model,
        status=str(latest["status"]),
        summary=str(latest["summary"]),
        run_id=str(latest["run_id"]),
        logged_at=pd.Timestamp(latest["logged_at"]).to_pydatetime(),
    )

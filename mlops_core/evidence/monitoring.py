"""Drift checks of a model's current data, and their history as MLflow runs.

A check compares a window of the model's current data (or an uploaded file) with the
reference set of a version (the champion by default), with the policy's drift settings.
Logged, it becomes one run in the experiment ``monitoring/<model>``:

- params: model, reference version and source, current source, window start / end (ISO,
  naive UTC), sample size, rows compared, methods used, engine;
- metrics: ``drift_share``, ``drifted_columns`` and ``drift.<column>`` (the column's score);
- tag ``mlops.drift.drifted`` (true / false);
- artifacts ``drift/summary.json`` (the whole result), ``drift/snapshot.json`` (Evidently's
  snapshot) and ``drift/report.html`` (Evidently's report), their digests recorded in the
  audit log (`stores.evidence_digests`).

The drift history is these runs read back, one row per window (the latest check wins).
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param, RunTag

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, NotFound, RegistryUnavailable
from mlops_core.evidence.comparison import TOLERANCE_SLACK
from mlops_core.evidence.drift import (
    EVIDENTLY_REPORT_SAMPLE,
    DriftOptions,
    DriftResult,
    EvidentlyArtifacts,
    compute_drift,
    evidently_report,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_evidence_writer
from mlops_core.policy import DriftPolicy, ModelPolicy, Policy, describe_target, load_policy
from mlops_core.stores.evidence_digests import record_evidence
from mlops_core.stores.model_data import (
    current_bounds,
    drift_columns,
    latest_window,
    load_current,
    load_reference,
    window_choices,
)
from mlops_core.stores.registry import Registry, VersionInfo
from mlops_core.stores.sources import LoadedData

EXPERIMENT_PREFIX = "monitoring/"
MLFLOW_DEFAULT_EXPERIMENT = "Default"
DRIFTED_TAG = "mlops.drift.drifted"
DRIFTED_COLUMNS_TAG = "mlops.drift.drifted_columns"
KIND_TAG = "mlops.monitoring"
COLUMN_METRIC_PREFIX = "drift."
ARTIFACT_DIR = "drift"
# The demo's history is seeded for every window; a small report keeps `demo` quick.
# MLflow params hold at most 6,000 characters; descriptions are cut well before that.
MAX_PARAM_CHARS = 500
HISTORY_PAGE_SIZE = 500


@dataclass(frozen=True, eq=False)
class DriftCheck:
    """One comparison: what was compared (with its sample sizes) and the result."""

    model: str
    reference_version: str
    reference: LoadedData
    current: LoadedData
    # Both None for data that is not a window of the configured source (an upload).
    window_start: datetime | None
    window_end: datetime | None
    options: DriftOptions
    # The policy's gate on the share of drifted columns, if it sets one.
    max_drift_share: float | None
    result: DriftResult
    # The policy key `max_drift_share` came from, when it is set.
    max_drift_share_key: str | None = None

    @property
    def has_window(self) -> bool:
        return self.window_start is not None

    @property
    def verdict(self) -> DriftVerdict:
        """Drifted or not under the policy's gate when it sets one (as the drift gate
        decides), else under the share of drifted columns at which the dataset drifts."""
        result = self.result
        if self.max_drift_share is not None:
            return DriftVerdict(
                drifted=result.drift_share > self.max_drift_share + TOLERANCE_SLACK,
                threshold=self.max_drift_share,
                rule=f"drifted when more than {self.max_drift_share:.0%} of columns drift",
                source=f"policy {self.max_drift_share_key}",
            )
        return default_verdict(result)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "reference_version": self.reference_version,
            "reference": f"{self.reference.description} ({self.reference.caption})",
            "current": f"{self.current.description} ({self.current.caption})",
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "sample_size": self.options.sample_size,
            "max_drift_share": self.max_drift_share,
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class DriftVerdict:
    """The decision a pipeline acts on, with the threshold used and where it came from."""

    drifted: bool
    threshold: float
    rule: str
    source: str

    def to_dict(self) -> dict:
        return {
            "drifted": self.drifted,
            "decision_threshold": self.threshold,
            "decision_rule": self.rule,
            "threshold_source": self.source,
        }


def default_verdict(result: DriftResult) -> DriftVerdict:
    """Without a policy gate: the dataset drifts at the share of drifted columns it was
    computed with (drift.column_drift_share, 0.5 unless the policy says otherwise)."""
    return DriftVerdict(
        drifted=result.dataset_drifted,
        threshold=result.drift_share_threshold,
        rule=f"drifted when at least {result.drift_share_threshold:.0%} of columns drift",
        source="the default: no policy drift.max_drift_share applies, so the share at which "
        "the dataset drifts (drift.column_drift_share) decides",
    )


@dataclass(frozen=True)
class DriftStatus:
    """The latest logged check of a model, for the overview."""

    model: str
    window_start: datetime | None
    window_end: datetime | None
    drift_share: float
    drifted: bool
    drifted_columns: list[str]
    run_id: str
    logged_at: datetime

    @property
    def label(self) -> str:
        """E.g. "no drift: 38% of columns drifted (a, b, c), window 2026-11-16 to 2026-11-23"."""
        word = "drifted" if self.drifted else "no drift"
        columns = f" ({', '.join(self.drifted_columns)})" if self.drifted_columns else ""
        window = ""
        if self.window_start and self.window_end:
            window = f", window {self.window_start:%Y-%m-%d} to {self.window_end:%Y-%m-%d}"
        return f"{word}: {self.drift_share:.0%} of columns drifted{columns}{window}"

    @property
    def verdict(self) -> str:
        """E.g. "no drift (38% of columns)": short enough for a table cell."""
        word = "drifted" if self.drifted else "no drift"
        return f"{word} ({self.drift_share:.0%} of columns)"

    @property
    def window(self) -> str:
        """E.g. "2026-11-16 to 11-23"; empty when the check named no window."""
        if not (self.window_start and self.window_end):
            return ""
        return f"{self.window_start:%Y-%m-%d} to {self.window_end:%m-%d}"


def drift_options(
    policy: ModelPolicy, columns: list[str], sample_size: int | None = None
) -> DriftOptions:
    """The policy's drift settings; `sample_size` overrides its rows per side."""
    drift = policy.drift or DriftPolicy()
    return DriftOptions(
        columns=columns,
        method=drift.method,
        drift_share=drift.column_drift_share,
        sample_size=drift.sample_size if sample_size is None else sample_size,
    )


def browsing_order(names: Iterable[str]) -> list[str]:
    """The team's own experiments first, the panel's monitoring runs after them, MLflow's
    "Default" last: the Experiments page opens on the first one."""
    return sorted(
        names,
        key=lambda name: (
            name == MLFLOW_DEFAULT_EXPERIMENT,
            name.startswith(EXPERIMENT_PREFIX),
            name,
        ),
    )


def monitoring_experiment(model: str) -> str:
    return f"{EXPERIMENT_PREFIX}{model}"


def reference_version(registry: Registry, policy: Policy, model: str) -> VersionInfo:
    """The version the policy serves `model` from: its reference set is the default one."""
    champion = registry.serving_version(policy, model)
    if champion is None:
        target = policy.serving_target(model)
        where = (
            f"{model} has no version at its {describe_target(target)}"
            if target
            else f"No policy names where {model} is served"
        )
        raise NotFound(f"{where}, so there is no reference to compare with; choose a version.")
    return champion


def check_model_drift(
    settings: Settings,
    registry: Registry,
    model: str,
    version: str | None = None,
    window: tuple[datetime | None, datetime | None] | None = None,
    current: LoadedData | None = None,
    sample_size: int | None = None,
) -> DriftCheck:
    """Drift of the model's current data against a version's reference set.

    `version` defaults to the policy's champion, `window` to the latest `window_days` of
    the configured current data (an open end of `window` is the data's oldest or newest
    row); `current` (an upload, say) replaces the configured source.
    `sample_size` overrides the policy's rows per side.
    """
    full_policy = load_policy(settings.policy_file)
    policy = full_policy.for_model(model)
    found = (
        registry.get_version(model, version)
        if version
        else reference_version(registry, full_policy, model)
    )
    rows = (policy.drift or DriftPolicy()).sample_size if sample_size is None else sample_size
    reference = load_reference(registry, policy, found, rows)
    start = end = None
    if current is None:
        start, end = _resolve_window(settings, policy, window)
        current = load_current(settings, policy.data, start, end, rows)
        if current.frame.empty:
            raise InvalidInput(f"The current data has no rows in {current.description}.")
    options = drift_options(policy, drift_columns(policy, reference.frame, current.frame), rows)
    return DriftCheck(
        model=model,
        reference_version=found.version,
        reference=reference,
        current=current,
        window_start=start,
        window_end=end,
        options=options,
        max_drift_share=(policy.drift or DriftPolicy()).max_drift_share,
        result=compute_drift(reference.frame, current.frame, options),
        max_drift_share_key=_drift_key(settings, model),
    )


def _drift_key(settings: Settings, model: str) -> str:
    policy = load_policy(settings.policy_file)
    own = policy.models.get(model)
    # A model's table is merged over [defaults]: its own key is one that differs.
    table = f'models."{model}"' if own and own.drift != policy.defaults.drift else "defaults"
    return f"{table}.drift.max_drift_share in {policy.source}"


def _resolve_window(
    settings: Settings,
    policy: ModelPolicy,
    window: tuple[datetime | None, datetime | None] | None,
) -> tuple[datetime, datetime]:
    if window is None:
        return latest_window(settings, policy)
    start, end = window
    if start is None or end is None:
        bounds = current_bounds(settings, policy.data)
        if bounds is None:
            raise NotFound("The current data source has no rows yet.")
        # Windows are half-open, so an open end lies just past the newest row.
        start = bounds[0] if start is None else start
        end = bounds[1] + timedelta(microseconds=1) if end is None else end
    return start, end


def drift_report(
    check: DriftCheck, sample_size: int = EVIDENTLY_REPORT_SAMPLE
) -> EvidentlyArtifacts:
    """Evidently's full report for the check's data, from a sample of `sample_size` rows."""
    options = replace(check.options, engine="evidently")
    return evidently_report(check.reference.frame, check.current.frame, options, sample_size)


def model_windows(settings: Settings, model: str) -> list[tuple[datetime, datetime]]:
    """The calendar weeks the model's current data covers, oldest first."""
    full_policy = load_policy(settings.policy_file)
    policy = full_policy.for_model(model)
    weeks = window_choices(settings, policy)[1:]
    return [(week.start, week.end) for week in reversed(weeks)]


# --- logging --------------------------------------------------------------------------------


def log_drift_check(
    settings: Settings,
    registry: Registry,
    check: DriftCheck,
    report: EvidentlyArtifacts,
    actor: Actor,
) -> str:
    """Store the check as a run of ``monitoring/<model>``; returns the run id.

    A write to MLflow: the actor needs a role above viewer, and the audit log records who
    logged which run (with the digests of its files).

    Every file is written before the run exists, and a run whose upload fails is deleted,
    so a failed check leaves nothing half-written in MLflow.
    """
    require_evidence_writer(actor, "log a drift check to MLflow")
    if not check.has_window:
        raise InvalidInput(
            "Only checks of the model's configured current data are logged: an upload has "
            "no window to place in the drift history."
        )
    result = check.result
    # The exact bytes uploaded, so that their digests are those of the stored files.
    contents = {
        name: text.encode("utf-8")
        for name, text in {
            "summary.json": json.dumps(check.to_dict(), indent=2, allow_nan=False),
            "snapshot.json": report.snapshot_json,
            "report.html": report.html,
        }.items()
    }
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [
        Metric("drift_share", result.drift_share, now, 0),
        Metric("drifted_columns", float(len(result.drifted_columns)), now, 0),
    ] + [Metric(metric_key(c.column), c.score, now, 0) for c in result.columns if pd.notna(c.score)]
    return store_monitoring_run(
        settings,
        registry,
        actor,
        MonitoringRun(
            model=check.model,
            version=check.reference_version,
            name=f"drift {check.window_start:%Y-%m-%d} to {check.window_end:%Y-%m-%d}",
            artifact_dir=ARTIFACT_DIR,
            files=contents,
            metrics=metrics,
            params=_params(check, report),
            tags=_tags(check),
        ),
        "the drift check",
    )


@dataclass(frozen=True)
class MonitoringRun:
    """One check to store as a run of ``monitoring/<model>``: its files (the exact bytes,
    whose digests the audit log records), metrics, params and tags."""

    model: str
    version: str
    name: str
    artifact_dir: str
    files: dict[str, bytes]
    metrics: list[Metric]
    params: list[Param]
    tags: list[RunTag]


def store_monitoring_run(
    settings: Settings, registry: Registry, actor: Actor, run: MonitoringRun, what: str
) -> str:
    """Create the run, upload its files and data, record their digests; returns the run id.

    Every file is written before the run exists, and a run whose upload fails is deleted,
    so a failed check leaves nothing half-written in MLflow."""
    with tempfile.TemporaryDirectory(prefix="mlops-monitoring-") as folder:
        for name, data in run.files.items():
            (Path(folder) / name).write_bytes(data)
        experiment_id = _ensure_experiment(settings, registry, monitoring_experiment(run.model))
        with registry._calling():
            created = registry.client.create_run(experiment_id, run_name=run.name)
        run_id = created.info.run_id
        try:
            with registry._calling():
                registry.client.log_artifacts(run_id, folder, run.artifact_dir)
                registry.client.log_batch(
                    run_id, metrics=run.metrics, params=run.params, tags=run.tags
                )
                registry.client.set_terminated(run_id)
            record_evidence(
                settings,
                actor,
                run.model,
                run.version,
                run_id,
                {f"{run.artifact_dir}/{name}": data for name, data in run.files.items()},
            )
        except OSError as exc:
            _discard(registry, run_id)
            raise RegistryUnavailable(
                f"Storing {what}'s files in MLflow failed ({exc}); nothing was logged."
            ) from None
        except BaseException:
            _discard(registry, run_id)
            raise
    return run_id


def _discard(registry: Registry, run_id: str) -> None:
    # The upload's own error is the one worth reporting; a run the server cannot delete
    # now stays without the `mlops.monitoring` tag, so the history never reads it.
    with contextlib.suppress(Exception):
        registry.client.delete_run(run_id)


def metric_key(column: str) -> str:
    # MLflow metric names allow letters, digits, and _ - . space / only.
    return COLUMN_METRIC_PREFIX + re.sub(r"[^\w\-. /]", "_", column)


def _params(check: DriftCheck, report: EvidentlyArtifacts) -> list[Param]:
    result = check.result
    values = {
        "model": check.model,
        "reference_version": check.reference_version,
        "reference": check.reference.description,
        "current": check.current.description,
        "window_start": _iso(check.window_start),
        "window_end": _iso(check.window_end),
        "sample_size": check.options.sample_size or "all rows",
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "methods": ",".join(sorted({c.method for c in result.columns})),
        "column_drift_share": result.drift_share_threshold,
        "engine": result.engine,
        "report_sample_size": report.sample_size_used,
    }
    return [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in values.items()]


def _tags(check: DriftCheck) -> list[RunTag]:
    return [
        RunTag(DRIFTED_TAG, str(check.result.dataset_drifted).lower()),
        RunTag(KIND_TAG, "drift"),
        RunTag(DRIFTED_COLUMNS_TAG, ",".join(check.result.drifted_columns)),
    ]


def _ensure_experiment(settings: Settings, registry: Registry, name: str) -> str:
    found = registry.experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # With a tracking server the server decides where artifacts go (`--serve-artifacts`).
    location = f"{settings.artifact_root}/{name}" if settings.is_embedded_tracking else None
    with registry._calling():
        return registry.client.create_experiment(name, artifact_location=location)


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(sep=" ")


# --- history --------------------------------------------------------------------------------


def drift_history(registry: Registry, model: str) -> pd.DataFrame:
    """One row per logged window, oldest first: window_start, window_end, drift_share,
    dataset_drifted, drifted_columns, run_id, logged_at and one ``drift.<column>`` score
    column per compared column."""
    runs = _monitoring_runs(registry, model)
    base = ["window_start", "window_end", "drift_share", "dataset_drifted", "drifted_columns"]
    if runs.empty:
        return pd.DataFrame(columns=[*base, "run_id", "logged_at"])
    scores = sorted(c for c in runs if c.startswith(f"metrics.{COLUMN_METRIC_PREFIX}"))
    history = pd.DataFrame(
        {
            "window_start": pd.to_datetime(runs["params.window_start"], format="ISO8601"),
            "window_end": pd.to_datetime(runs["params.window_end"], format="ISO8601"),
            "drift_share": runs["metrics.drift_share"],
            "dataset_drifted": runs[f"tags.{DRIFTED_TAG}"] == "true",
            "drifted_columns": runs[f"tags.{DRIFTED_COLUMNS_TAG}"].fillna(""),
            "run_id": runs["run_id"],
            "logged_at": runs["start_time"],
            **{name.removeprefix("metrics."): runs[name] for name in scores},
        }
    )
    history = history.sort_values(["window_start", "logged_at"], kind="stable")
    return history.drop_duplicates("window_start", keep="last").reset_index(drop=True)


def latest_drift_status(registry: Registry, model: str) -> DriftStatus | None:
    """The check of the most recent window (None when nothing was logged)."""
    history = drift_history(registry, model)
    if history.empty:
        return None
    latest = history.sort_values(["window_end", "logged_at"]).iloc[-1]
    return DriftStatus(
        model=model,
        window_start=latest["window_start"].to_pydatetime(),
        window_end=latest["window_end"].to_pydatetime(),
        drift_share=float(latest["drift_share"]),
        drifted=bool(latest["dataset_drifted"]),
        drifted_columns=[c for c in latest["drifted_columns"].split(",") if c],
        run_id=str(latest["run_id"]),
        logged_at=pd.Timestamp(latest["logged_at"]).to_pydatetime(),
    )


def _monitoring_runs(registry: Registry, model: str, kind: str = "drift") -> pd.DataFrame:
    """Every run of ``monitoring/<model>`` of this kind (drift, quality), all pages."""
    experiment = registry.experiment_by_name(monitoring_experiment(model))
    if experiment is None:
        return pd.DataFrame()
    pages, token = [], None
    while True:
        page = registry.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{KIND_TAG}` = '{kind}'",
            page_size=HISTORY_PAGE_SIZE,
            page_token=token,
        )
        pages.append(page.runs)
        token = page.next_page_token
        if not token:
            return pd.concat(pages, ignore_index=True)


# --- demo -----------------------------------------------------------------------------------

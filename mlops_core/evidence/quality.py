"""Model quality on the inference log, per serving version and window, once labels arrive.

`assess_quality` is pure: rows of the log (and what MLflow knows about each version) in, a
`QualityReport` out. Per version and window: rows, labelled rows and label coverage, the
task's metrics once labels exist, drift of the scores and of the labels against the
version's evaluation set, and alerts against the policy's `[monitoring]` minimums, the
largest degradation from the version's own offline metrics and the label coverage.

A window's labels are complete `label_delay_days` after it ends. Until then the window is
"labels pending": its metrics are shown with their coverage but never judged, so a window
whose labels are still coming in is never compared with complete ones. A complete window
with fewer than `min_labelled_rows` labelled rows is "too few labels", also not judged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import pandas as pd

from mlops_core.errors import InvalidInput, MlopsError
from mlops_core.evidence.comparison import TOLERANCE_SLACK
from mlops_core.evidence.drift import DriftOptions, compute_drift
from mlops_core.evidence.inference_log import LogColumns, labelled_rows
from mlops_core.evidence.live_comparison import ComparisonConfig, LiveComparison, compare_live
from mlops_core.evidence.quality_metrics import compute_metrics, goodness_of, task_metrics
from mlops_core.policy import LiveComparisonPolicy, MonitoringPolicy

WindowStatus = Literal["complete", "labels pending", "too few labels"]
Status = Literal["alert", "ok", "not evaluated"]
AlertKind = Literal["minimum", "degradation", "coverage"]
# Names the offline run may log a metric under, besides the quality metric's own name.
OFFLINE_NAMES: dict[str, tuple[str, ...]] = {
    "pr_auc": ("average_precision",),
    "f1": ("f1_score",),
    "precision": ("precision_score",),
    "recall": ("recall_score",),
    "accuracy": ("accuracy_score",),
    "brier_score": ("brier_score_loss",),
    "rmse": ("root_mean_squared_error",),
    "mae": ("mean_absolute_error",),
    "r2": ("r2_score",),
}


@dataclass(frozen=True)
class QualitySpec:
    """What to assess and how: the policy's settings for one model."""

    task: str
    columns: LogColumns
    monitoring: MonitoringPolicy
    live: LiveComparisonPolicy = field(default_factory=LiveComparisonPolicy)
    champion: str | None = None
    # Only this version's windows, and it is the challenger when it is not the champion.
    version: str | None = None


@dataclass(frozen=True)
class VersionEvidence:
    """What MLflow holds for a version: its offline metrics and evaluation set (or why not)."""

    offline: dict[str, float] = field(default_factory=dict)
    evaluation: pd.DataFrame | None = None
    evaluation_note: str = ""


@dataclass(frozen=True)
class WindowQuality:
    version: str
    start: datetime
    end: datetime
    rows: int
    labelled: int
    labels_complete: bool
    status: WindowStatus
    metrics: dict[str, float]
    prediction_drift: float | None = None
    prediction_drifted: bool | None = None
    label_drift: float | None = None
    label_drifted: bool | None = None

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    @property
    def judged(self) -> bool:
        return self.status == "complete"

    def to_dict(self) -> dict:
        return {**asdict(self), "coverage": self.coverage}


@dataclass(frozen=True)
class QualityAlert:
    version: str
    window_start: datetime
    window_end: datetime
    kind: AlertKind
    metric: str
    observed: float
    threshold: float
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WindowComparison:
    start: datetime
    end: datetime
    labels_complete: bool
    comparison: LiveComparison | None
    note: str = ""


@dataclass(frozen=True)
class QualityReport:
    model: str
    task: str
    champion: str | None
    challenger: str | None
    period_start: datetime
    period_end: datetime
    as_of: datetime
    monitoring: MonitoringPolicy
    windows: list[WindowQuality]
    offline: dict[str, dict[str, float]]
    alerts: list[QualityAlert]
    comparison: LiveComparison | None
    comparison_note: str
    window_comparisons: list[WindowComparison]
    # The metric the live comparison's verdict is summarised by (the gate's metric).
    live_metric: str
    notes: list[str] = field(default_factory=list)

    @property
    def versions(self) -> list[str]:
        return sorted({w.version for w in self.windows}, key=_version_key)

    @property
    def status(self) -> Status:
        if self.alerts:
            return "alert"
        return "ok" if any(w.judged for w in self.windows) else "not evaluated"

    @property
    def summary(self) -> str:
        """One line: the status, the first alerts and the live comparison's key verdict."""
        if self.status == "alert":
            shown = "; ".join(a.message for a in self.alerts[:2])
            more = f" (+{len(self.alerts) - 2} more)" if len(self.alerts) > 2 else ""
            text = f"alert: {shown}{more}"
        elif self.status == "ok":
            text = "ok: every complete window meets the policy"
        else:
            text = "not evaluated: no window has complete labels yet"
        if self.comparison is not None:
            key = self.comparison.metric(self.live_metric)
            text += (
                f"; v{self.comparison.challenger} vs v{self.comparison.champion} "
                f"({self.comparison.mode}): {key.metric} {key.difference:+.4f}, {key.verdict}"
            )
        return text

    def windows_frame(self) -> pd.DataFrame:
        """One row per version and window with its counts, status and metrics."""
        rows = [
            {
                "version": w.version,
                "window_start": w.start,
                "window_end": w.end,
                "status": w.status,
                "rows": w.rows,
                "labelled": w.labelled,
                "coverage": w.coverage,
                **w.metrics,
                "prediction_drift": w.prediction_drift,
                "label_drift": w.label_drift,
            }
            for w in self.windows
        ]
        return pd.DataFrame(rows)

    def thresholds(self, version: str) -> dict[str, float]:
        """The floor (or ceiling) each metric of `version` is held to: the stricter of the
        policy's minimum and its offline value less the allowed degradation."""
        found: dict[str, float] = {}
        offline = self.offline.get(version, {})
        for metric in task_metrics(self.task):
            bounds = []
            if metric in self.monitoring.min_metrics:
                bounds.append(self.monitoring.min_metrics[metric])
            if metric in self.monitoring.max_degradation and metric in offline:
                bounds.append(
                    _degraded(metric, offline[metric], self.monitoring.max_degradation[metric])
                )
            if bounds:
                found[metric] = max(bounds, key=lambda b: goodness_of(metric, b))
        return found

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "task": self.task,
            "status": self.status,
            "summary": self.summary,
            "champion": self.champion,
            "challenger": self.challenger,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "as_of": self.as_of,
            "policy": self.monitoring.model_dump(),
            "offline": self.offline,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "comparison_note": self.comparison_note,
            "window_comparisons": [
                {
                    "start": c.start,
                    "end": c.end,
                    "labels_complete": c.labels_complete,
                    "comparison": None if c.comparison is None else c.comparison.to_dict(),
                    "note": c.note,
                }
                for c in self.window_comparisons
            ],
            "notes": self.notes,
        }


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (1 << 30, version)


def _degraded(metric: str, offline: float, allowed: float) -> float:
    """The worst value within `allowed` of the offline one, in the metric's own units."""
    if metric == "mean_error":
        return math.copysign(abs(offline) + allowed, offline or 1.0)
    return offline - allowed if goodness_of(metric, 1.0) > 0 else offline + allowed


def quality_windows(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """`days`-wide windows tiling [start, end) back from `end`, oldest first."""
    width = timedelta(days=days)
    windows = []
    stop = end
    while stop > start:
        windows.append((max(stop - width, start), stop))
        stop -= width
    return windows[::-1]


def period_end(newest: datetime) -> datetime:
    """The midnight after the newest row: windows then end on whole days."""
    return newest.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def assess_quality(
    model: str,
    frame: pd.DataFrame,
    spec: QualitySpec,
    evidence: dict[str, VersionEvidence],
    period: tuple[datetime, datetime],
    as_of: datetime,
) -> QualityReport:
    """The quality of every version in `frame` (rows of the inference log in `period`)."""
    columns, monitoring = spec.columns, spec.monitoring
    columns.require(frame)
    stamps = pd.to_datetime(frame[columns.timestamp], utc=True, format="ISO8601").dt.tz_convert(
        None
    )
    frame = frame.assign(
        **{columns.timestamp: stamps, columns.version: frame[columns.version].astype(str)}
    )
    windows = quality_windows(*period, monitoring.window_days)
    versions = sorted(frame[columns.version].unique(), key=_version_key)
    if spec.version is not None:
        if spec.version not in versions:
            raise InvalidInput(f"v{spec.version} has no rows in the inference log in this period.")
        versions = [spec.version]
    delay = timedelta(days=monitoring.label_delay_days)
    results, notes = [], []
    for version in versions:
        rows = frame[frame[columns.version] == version]
        reference = evidence.get(version, VersionEvidence())
        if reference.evaluation is None and reference.evaluation_note:
            notes.append(f"v{version}: no prediction or label drift: {reference.evaluation_note}")
        for start, end in windows:
            inside = rows[(rows[columns.timestamp] >= start) & (rows[columns.timestamp] < end)]
            if inside.empty:
                continue
            results.append(
                _window(version, inside, start, end, end + delay <= as_of, spec, reference)
            )
    offline = {v: evidence[v].offline for v in versions if v in evidence}
    alerts = [alert for w in results if w.judged for alert in _alerts(w, spec, offline)]
    comparison, note, per_window = _comparisons(frame, spec, versions, windows, delay, as_of)
    return QualityReport(
        model=model,
        task=spec.task,
        champion=spec.champion,
        challenger=comparison.challenger if comparison else None,
        period_start=period[0],
        period_end=period[1],
        as_of=as_of,
        monitoring=monitoring,
        windows=results,
        offline=offline,
        alerts=alerts,
        comparison=comparison,
        comparison_note=note,
        window_comparisons=per_window,
        live_metric=spec.live.metric
        if spec.live.metric in task_metrics(spec.task)
        else task_metrics(spec.task)[0],
        notes=notes,
    )


def _window(
    version: str,
    rows: pd.DataFrame,
    start: datetime,
    end: datetime,
    complete: bool,
    spec: QualitySpec,
    reference: VersionEvidence,
) -> WindowQuality:
    labelled = labelled_rows(rows, spec.columns, spec.task)
    status: WindowStatus = (
        "labels pending"
        if not complete
        else "too few labels"
        if len(labelled) < spec.monitoring.min_labelled_rows
        else "complete"
    )
    metrics = (
        compute_metrics(spec.task, labelled.labels, labelled.predicted, labelled.scores)
        if len(labelled)
        else {}
    )
    drift = _output_drift(rows, spec, reference)
    return WindowQuality(
        version, start, end, len(rows), len(labelled), complete, status, metrics, *drift
    )


def _output_drift(
    rows: pd.DataFrame, spec: QualitySpec, reference: VersionEvidence
) -> tuple[float | None, bool | None, float | None, bool | None]:
    """Drift of the scores (the predictions without a score) and of the labels against the
    version's evaluation set, with the drift engine."""
    columns, evaluation = spec.columns, reference.evaluation
    found: list[float | bool | None] = [None, None, None, None]
    if evaluation is None:
        return tuple(found)  # type: ignore[return-value]
    output = columns.score if columns.has_score(rows) else columns.prediction
    labelled = rows[rows[columns.label].notna()]
    for slot, (column, current) in enumerate(((output, rows), (columns.label, labelled))):
        if column is None or column not in evaluation or current.empty:
            continue
        try:
            result = compute_drift(
                evaluation[[column]], current[[column]], DriftOptions(columns=[column])
            )
        except MlopsError:
            continue
        if result.columns:
            found[2 * slot] = float(result.columns[0].score)
            found[2 * slot + 1] = bool(result.columns[0].drifted)
    return tuple(found)  # type: ignore[return-value]


def _alerts(
    window: WindowQuality, spec: QualitySpec, offline: dict[str, dict[str, float]]
) -> list[QualityAlert]:
    monitoring = spec.monitoring
    where = f"v{window.version}, week of {window.start:%Y-%m-%d}"
    alerts = []

    def alert(kind: AlertKind, metric: str, observed: float, threshold: float, text: str) -> None:
        alerts.append(
            QualityAlert(
                window.version,
                window.start,
                window.end,
                kind,
                metric,
                observed,
                threshold,
                f"{where}: {text}",
            )
        )

    if window.coverage < monitoring.min_label_coverage:
        alert(
            "coverage",
            "label_coverage",
            window.coverage,
            monitoring.min_label_coverage,
            f"label coverage {window.coverage:.0%} under {monitoring.min_label_coverage:.0%}",
        )
    for metric, minimum in monitoring.min_metrics.items():
        value = window.metrics.get(metric, float("nan"))
        if _worse(metric, value, minimum, 0.0):
            word = "below" if goodness_of(metric, 1.0) > 0 else "above"
            alert(
                "minimum",
                metric,
                value,
                minimum,
                f"{metric} {value:.4f} {word} the policy's {minimum:g}",
            )
    for metric, allowed in monitoring.max_degradation.items():
        value = window.metrics.get(metric, float("nan"))
        base = offline.get(window.version, {}).get(metric)
        if base is not None and _worse(metric, value, base, allowed):
            alert(
                "degradation",
                metric,
                value,
                _degraded(metric, base, allowed),
                f"{metric} {value:.4f} vs offline {base:.4f}, more than {allowed:g} worse",
            )
    return alerts


def _worse(metric: str, value: float, bound: float, allowed: float) -> bool:
    """Whether `value` is worse than `bound` by more than `allowed`; undefined is not judged."""
    if not math.isfinite(value):
        return False
    return bool(goodness_of(metric, value) < goodness_of(metric, bound) - allowed - TOLERANCE_SLACK)


def _comparisons(
    frame: pd.DataFrame,
    spec: QualitySpec,
    versions: list[str],
    windows: list[tuple[datetime, datetime]],
    delay: timedelta,
    as_of: datetime,
) -> tuple[LiveComparison | None, str, list[WindowComparison]]:
    """The champion against the challenger over the period and in each window."""
    columns = spec.columns
    champion = spec.champion
    present = sorted(frame[columns.version].unique(), key=_version_key)
    if champion is None:
        return None, "No version is served at the policy's target: nothing to compare with.", []
    if champion not in present:
        return None, f"The champion v{champion} has no rows in this period.", []
    challenger = spec.version if spec.version not in (None, champion) else None
    if challenger is None:
        labelled = frame[frame[columns.label].notna() & (frame[columns.version] != champion)]
        counts = labelled[columns.version].value_counts()
        if counts.empty:
            others = [v for v in present if v != champion]
            why = "has no labelled rows yet" if others else "is the only version in the log"
            subject = f"v{', v'.join(others)}" if others else f"v{champion}"
            return None, f"{subject} {why}: no live comparison.", []
        challenger = str(counts.index[0])
    config = ComparisonConfig(
        champion=champion,
        challenger=challenger,
        task=spec.task,
        columns=columns,
        confidence=spec.live.confidence,
        n_resamples=spec.live.n_resamples,
    )
    pair = frame[frame[columns.version].isin([champion, challenger])]
    try:
        overall = compare_live(pair, config)
    except MlopsError as exc:
        return None, str(exc), []
    per_window = []
    for start, end in windows:
        inside = pair[(pair[columns.timestamp] >= start) & (pair[columns.timestamp] < end)]
        complete = end + delay <= as_of
        try:
            found, note = compare_live(inside, config), ""
        except MlopsError as exc:
            found, note = None, str(exc)
        per_window.append(WindowComparison(start, end, complete, found, note))
    return overall, "", per_window


def metric_floor_frame(report: QualityReport) -> pd.DataFrame:
    """The thresholds of each version and metric, for charts: version, metric, threshold."""
    return pd.DataFrame(
        [
            {"version": version, "metric": metric, "threshold": value}
            for version in report.versions
            for metric, value in report.thresholds(version).items()
        ],
        columns=["version", "metric", "threshold"],
    )

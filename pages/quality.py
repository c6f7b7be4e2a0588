"""Quality: how each served version performs on live traffic once labels arrive, per window,
and the champion against the challenger on the same or split traffic.

The model lives in the URL (?model=...), so other pages can link here.
"""

import pandas as pd
import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.evidence.quality import QualityReport
from mlops_core.evidence.quality_metrics import task_metrics
from mlops_core.evidence.quality_runs import (
    log_quality_check,
    quality_history,
    run_quality_check,
)
from mlops_core.people.access import writes_evidence
from ui.app_state import REGISTRY_TTL_SECONDS, cached_overview, or_stop, registry, settings
from ui.charts.quality import comparison_figure, metric_figure, window_comparison_figure
from ui.identity import require_page
from ui.text import plain

current = settings()
actor = require_page(current, "quality")

NUMBER = st.column_config.NumberColumn(format="%.4f")
ALL_VERSIONS = "All versions"


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Scoring the labelled rows…")
def _report(current: Settings, model: str, version: str | None) -> QualityReport:
    return run_quality_check(
        current, model, version, log=False, registry=registry(current.tracking_uri)
    )


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the logged checks…")
def _history(current: Settings, model: str) -> pd.DataFrame:
    return quality_history(registry(current.tracking_uri), model)


def _status(report: QualityReport) -> None:
    text = plain(report.summary)
    if report.status == "alert":
        # An alert about the model, not an error of the page.
        st.warning(text, icon=":material/warning:")
    elif report.status == "ok":
        st.success(text)
    else:
        st.info(text)


def _judged_metrics(report: QualityReport) -> list[str]:
    """The metrics the policy holds the windows to, and the live comparison's: the table
    shows these so it fits the page; every metric stays one pick away in the chart."""
    judged = {*report.monitoring.min_metrics, *report.monitoring.max_degradation}
    judged.add(report.live_metric)
    return [m for m in task_metrics(report.task) if m in judged]


def _windows_table(report: QualityReport) -> None:
    shown = _judged_metrics(report)
    frame = report.windows_frame()
    frame = frame.drop(
        columns=["window_end", *(m for m in task_metrics(report.task) if m not in shown)],
        errors="ignore",
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "window_start": st.column_config.DatetimeColumn("window start", format="YYYY-MM-DD"),
            "coverage": st.column_config.ProgressColumn(
                "label coverage", format="percent", min_value=0, max_value=1, width="small"
            ),
            **{m: NUMBER for m in shown},
            "prediction_drift": st.column_config.NumberColumn("score drift", format="%.4f"),
            "label_drift": st.column_config.NumberColumn("label drift", format="%.4f"),
        },
    )
    st.caption(
        f"A window's labels are complete {report.monitoring.label_delay_days:g} days after it "
        "ends; until then it is *labels pending* and never judged. A complete window with "
        f"fewer than {report.monitoring.min_labelled_rows} labelled rows is *too few labels*. "
        "Score and label drift: the drift engine's score against the version's evaluation set. "
        "The table shows the metrics the policy judges; the chart below has every metric."
    )


def _comparison(report: QualityReport) -> None:
    st.subheader("Champion against challenger on live traffic")
    comparison = report.comparison
    if comparison is None:
        st.info(plain(report.comparison_note or "No live comparison."))
        return
    what = "labelled requests both scored" if comparison.mode == "shadow" else "labelled rows"
    st.caption(
        plain(
            f"v{comparison.challenger} against the champion v{comparison.champion}: "
            f"{comparison.mode} traffic, {comparison.n_compared:,} {what}, "
            f"{comparison.confidence:.0%} intervals from {comparison.n_resamples:,} bootstrap "
            "resamples (DeLong's test for ROC AUC on shadow traffic). Rows needed: labelled "
            "rows still needed for a verdict if the difference stays as it is."
        )
    )
    frame = pd.DataFrame([m.to_dict() for m in comparison.metrics]).drop(
        columns=["direction", "gain", "gain_low", "gain_high"]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "champion": st.column_config.NumberColumn(f"v{comparison.champion}", format="%.4f"),
            "challenger": st.column_config.NumberColumn(f"v{comparison.challenger}", format="%.4f"),
            "difference": NUMBER,
            "ci_low": NUMBER,
            "ci_high": NUMBER,
            "p_value": st.column_config.NumberColumn("p-value", format="%.2g"),
        },
    )
    st.plotly_chart(comparison_figure(comparison), width="stretch")
    st.plotly_chart(window_comparison_figure(report, report.live_metric), width="stretch")
    missing = [c for c in report.window_comparisons if c.comparison is None and c.note]
    for window in missing:
        st.caption(plain(f"Week of {window.start:%Y-%m-%d}: {window.note}"))


st.title("Quality")
st.caption(
    "Each served version's quality on the inference log, per window, once labels arrive: "
    "label coverage, the task's metrics against the policy's [monitoring] thresholds and the "
    "version's own offline evaluation, and the champion against a challenger on live traffic."
)

entries = or_stop(cached_overview, current)
if not entries:
    st.info("No registered models yet. Run `python -m mlops_core demo` to load the demo scenario.")
    st.stop()
models = {entry.name: entry for entry in entries}
left, right = st.columns(2)
model = left.selectbox("Model", list(models), key="model", bind="query-params")
versions = [v.version for v in models[model].versions]
chosen = right.selectbox(
    "Version",
    [ALL_VERSIONS, *versions],
    key="quality_version",
    help="One version only; when it is not the champion it is the challenger compared.",
)
version = None if chosen == ALL_VERSIONS else chosen

report = or_stop(_report, current, model, version)
_status(report)
st.caption(
    plain(
        f"Period {report.period_start:%Y-%m-%d} to {report.period_end:%Y-%m-%d} in windows of "
        f"{report.monitoring.window_days} days; champion "
        + (f"v{report.champion}" if report.champion else "none")
        + f"; labels complete as of {report.as_of:%Y-%m-%d %H:%M} UTC."
    )
)
for note in report.notes:
    st.caption(plain(note))

if report.alerts:
    st.subheader("Alerts")
    st.dataframe(
        pd.DataFrame([a.to_dict() for a in report.alerts]).drop(columns="window_end"),
        hide_index=True,
        width="stretch",
        column_config={
            "window_start": st.column_config.DatetimeColumn("window", format="YYYY-MM-DD"),
            "observed": NUMBER,
            "threshold": NUMBER,
            "message": st.column_config.TextColumn(width="medium"),
        },
    )

st.subheader("Windows")
_windows_table(report)
metrics = list(task_metrics(report.task))
metric = st.selectbox(
    "Metric over windows",
    metrics,
    index=metrics.index(report.live_metric) if report.live_metric in metrics else 0,
    key="quality_metric",
)
st.plotly_chart(metric_figure(report, metric), width="stretch")
offline = pd.DataFrame(report.offline).T
if not offline.empty:
    st.caption("Offline evaluation metrics of each version (its training run), for reference:")
    st.dataframe(offline, width="stretch", column_config={m: NUMBER for m in offline.columns})

_comparison(report)

may_log = writes_evidence(actor)
if st.button(
    "Log this check to MLflow",
    disabled=not may_log,
    help="Stores the report as a run of monitoring/<model>."
    if may_log
    else "Logging writes to MLflow: it needs the requester or approver role.",
):
    try:
        run_id = log_quality_check(current, registry(current.tracking_uri), report, actor)
    except MlopsError as exc:
        st.error(plain(str(exc)))
    else:
        _history.clear()
        st.success(plain(f"Logged as run {run_id} of MLflow experiment monitoring/{model}."))

st.subheader("Logged checks")
history = or_stop(_history, current, model)
if history.empty:
    st.caption(
        plain(
            f"No quality check of {model} has been logged yet: use the button above or "
            "`python -m mlops_core quality --model ...`."
        )
    )
else:
    st.dataframe(
        history,
        hide_index=True,
        width="stretch",
        column_config={
            "run_id": st.column_config.TextColumn(width="small"),
            "logged_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "summary": st.column_config.TextColumn(width="medium"),
        },
    )

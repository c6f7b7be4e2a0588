"""Drift: a window of a model's current data (or an uploaded file) against the reference set
of a version, column by column, with the history of logged checks and Evidently's report.

The model lives in the URL (?model=...), so other pages can link here.
"""

import io

import pandas as pd
import plotly.express as px
import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.evidence.drift import EVIDENTLY_REPORT_SAMPLE, EvidentlyArtifacts
from mlops_core.evidence.monitoring import (
    DriftCheck,
    check_model_drift,
    drift_history,
    drift_report,
    log_drift_check,
)
from mlops_core.people.access import writes_evidence
from mlops_core.stores.model_data import WindowChoice
from mlops_core.stores.sources import as_loaded, read_table_file
from ui.app_state import REGISTRY_TTL_SECONDS, or_stop, registry, settings
from ui.charts.drift import distribution_figure
from ui.data_selection import select_data
from ui.identity import require_page
from ui.reports import show_report
from ui.text import plain

current = settings()
actor = require_page(current, "drift")

SCORE = st.column_config.NumberColumn(format="%.4f")
REPORT_KEY = "drift_report_for"


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Comparing the data…")
def _check(
    current: Settings,
    model: str,
    version: str,
    window: WindowChoice | None,
    sample_size: int,
    upload: tuple[str, bytes] | None,
) -> DriftCheck:
    uploaded = None
    if upload is not None:
        name, data = upload
        frame = read_table_file(io.BytesIO(data), name)
        uploaded = as_loaded(frame, f"uploaded file {name}", sample_size)
    return check_model_drift(
        current,
        registry(current.tracking_uri),
        model,
        version,
        None if window is None else (window.start, window.end),
        uploaded,
        sample_size,
    )


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Building Evidently's report…")
def _report(key: tuple, _check: DriftCheck, sample_size: int) -> EvidentlyArtifacts:
    return drift_report(_check, sample_size)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the drift history…")
def _history(current: Settings, model: str) -> pd.DataFrame:
    return drift_history(registry(current.tracking_uri), model)


def _verdict(check: DriftCheck) -> None:
    result = check.result
    drifted = len(result.drifted_columns)
    share, gate = result.drift_share, check.max_drift_share
    a, b, c = st.columns(3)
    a.metric("Drifted columns", f"{drifted} of {len(result.columns)}")
    b.metric(
        "Drift share",
        f"{share:.0%}",
        help=f"Evidently calls the dataset drifted at {result.drift_share_threshold:.0%}.",
    )
    c.metric("Policy gate", "none" if gate is None else f"at most {gate:.0%}")
    text = f"{drifted} of {len(result.columns)} columns drifted ({share:.0%}): the dataset " + (
        "has drifted" if result.dataset_drifted else "has not drifted"
    )
    if gate is not None:
        passes = share <= gate
        text += f"; the policy's drift gate {'passes' if passes else 'fails'}."
        (st.success if passes else st.error)(text)
    else:
        (st.error if result.dataset_drifted else st.success)(text + ".")


def _history_section(current: Settings, model: str, threshold: float | None) -> None:
    st.subheader("Drift history")
    history = or_stop(_history, current, model)
    if history.empty:
        st.info(
            f"No drift check of {model} has been logged yet: log one with the button above, "
            "or run `python -m mlops_core drift --model ...`."
        )
        return
    share = px.line(history, x="window_start", y="drift_share", markers=True)
    if threshold is not None:
        share.add_hline(y=threshold, line_dash="dash", annotation_text="policy gate")
    share.update_layout(
        title="Share of drifted columns per window",
        xaxis_title="window start",
        yaxis_title="drift share",
        yaxis_tickformat=".0%",
    )
    st.plotly_chart(share, width="stretch")
    scores = [c for c in history.columns if c.startswith("drift.")]
    long = history.melt("window_start", scores, var_name="column", value_name="score")
    long["column"] = long["column"].str.removeprefix("drift.")
    figure = px.line(long, x="window_start", y="score", color="column", markers=True)
    figure.update_layout(title="Drift score per column", xaxis_title="window start")
    st.plotly_chart(figure, width="stretch")
    st.caption(
        f"{len(history)} logged windows, from the runs of MLflow experiment monitoring/{model}."
    )


st.title("Drift")
st.caption(
    "How far a model's current data has moved from the reference set it was trained on, "
    "column by column (Evidently's DataDriftPreset statistics)."
)

selection = select_data(
    current,
    "drift",
    "Upload a CSV or Parquet file to compare it with the reference set.",
    "Larger inputs are compared on a random sample of this many rows (fixed seed).",
)
model, version, window, upload = (
    selection.model,
    selection.version,
    selection.window,
    selection.upload,
)
sample_size = selection.sample_size
policy = selection.policy

check = or_stop(_check, current, model, version, window, sample_size, upload)
result = check.result
# Descriptions carry dataset names and paths from MLflow: text, never Markdown.
st.caption(
    plain(
        f"Reference: v{check.reference_version}, {check.reference.description} "
        f"({check.reference.caption}). Current: {check.current.description} "
        f"({check.current.caption}). Compared: {result.n_reference:,} reference and "
        f"{result.n_current:,} current rows (at most {sample_size:,} per side)."
    )
)
_verdict(check)

st.subheader("Columns, most drifted first")
st.dataframe(
    result.columns_frame().rename(columns={"column_type": "type"}),
    hide_index=True,
    width="stretch",
    column_config={"score": SCORE},
)
for skipped in result.skipped:
    st.caption(plain(f"Skipped {skipped.column}: {skipped.reason}"))

compared = {c.column: c for c in result.columns}
column = st.selectbox("Distribution of", list(compared), key="drift_column")
st.plotly_chart(
    or_stop(
        distribution_figure,
        check.reference.frame,
        check.current.frame,
        column,
        compared[column].column_type,
    ),
    width="stretch",
)

st.subheader("Evidently report")
report_rows = int(
    st.number_input(
        "Rows per side in the report",
        min_value=100,
        value=EVIDENTLY_REPORT_SAMPLE,
        step=1000,
        key="drift_report_rows",
        help="The report embeds its plots' data, so it is built from a sample.",
    )
)
key = (model, version, window, sample_size, upload and upload[0], report_rows)
build, log = st.columns(2)
if build.button("Build the full Evidently report"):
    st.session_state[REPORT_KEY] = key
may_log = writes_evidence(actor)
logged = log.button(
    "Log this check to MLflow",
    disabled=not (check.has_window and may_log),
    help=(
        "Logging writes to MLflow: it needs the requester or approver role."
        if not may_log
        else "Stores the summary and Evidently's report as a run of monitoring/<model>."
        if check.has_window
        else "An uploaded file is an ad-hoc check with no window in the history; not logged."
    ),
)
if logged:
    try:
        artifacts = _report(key, check, report_rows)
        run_id = log_drift_check(current, registry(current.tracking_uri), check, artifacts, actor)
    except MlopsError as exc:
        st.error(plain(str(exc)))
    else:
        _history.clear()
        st.success(plain(f"Logged as run {run_id} of MLflow experiment monitoring/{model}."))
if st.session_state.get(REPORT_KEY) == key:
    artifacts = or_stop(_report, key, check, report_rows)
    st.caption(
        f"Built from {artifacts.n_reference:,} reference and {artifacts.n_current:,} current rows."
    )
    st.download_button(
        "Download the report (HTML)",
        artifacts.html,
        file_name=f"drift-{model}-v{check.reference_version}.html",
        mime="text/html",
    )
    show_report(artifacts.html)

_history_section(current, model, check.max_drift_share)

"""Data profiles: a model's reference set and a window of its current data (or an uploaded
file) side by side, checked against the version's signature and for freshness.

The model lives in the URL (?model=...), so other pages can link here.
"""

import io
from datetime import timedelta

import pandas as pd
import streamlit as st

from mlops_core.config import Settings
from mlops_core.evidence.fairness_evidence import model_policy
from mlops_core.evidence.profiling import (
    DEFAULT_SUMMARY_SAMPLE,
    column_distribution_figure,
    compare_profiles,
    evidently_summary,
    freshness,
)
from mlops_core.evidence.schema_check import (
    SchemaReport,
    check_schema,
    signature_inputs_for_version,
)
from mlops_core.stores.model_data import (
    WindowChoice,
    current_bounds,
    load_current,
    load_reference,
)
from mlops_core.stores.sources import LoadedData, as_loaded, read_table_file
from ui.app_state import REGISTRY_TTL_SECONDS, or_stop, registry, settings
from ui.data_selection import select_data
from ui.identity import require_page
from ui.reports import show_report
from ui.text import plain

current = settings()
require_page(current, "data_profiles")

SUMMARY_KEY = "profile_summary_for"
SHOWN_STATS = [
    "type",
    "missing_share",
    "distinct_count",
    "min",
    "max",
    "mean",
    "q25",
    "q50",
    "q75",
    "top_categories",
]


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Loading the reference set…")
def _reference(current: Settings, model: str, version: str, sample_size: int) -> LoadedData:
    found = registry(current.tracking_uri).get_version(model, version)
    policy = model_policy(current, model)
    return load_reference(registry(current.tracking_uri), policy, found, sample_size)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Loading the current data…")
def _current(
    current: Settings,
    model: str,
    window: WindowChoice | None,
    sample_size: int,
    upload: tuple[str, bytes] | None,
) -> LoadedData:
    if upload is not None:
        name, data = upload
        return as_loaded(
            read_table_file(io.BytesIO(data), name), f"uploaded file {name}", sample_size
        )
    assert window is not None  # one of the two is chosen on the page
    policy = model_policy(current, model)
    return load_current(current, policy.data, window.start, window.end, sample_size)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Checking the model signature…")
def _schema(current: Settings, model: str, version: str, frame: pd.DataFrame) -> SchemaReport:
    inputs = signature_inputs_for_version(registry(current.tracking_uri), model, version)
    return check_schema(frame, inputs, ignore=model_policy(current, model).data.bookkeeping_columns)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Building Evidently's data summary…")
def _summary(current: pd.DataFrame, reference: pd.DataFrame, sample_size: int) -> dict:
    return evidently_summary(current, reference, sample_size=sample_size)


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(f"{label} {share:.0%}" for label, share in value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _profile_table(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    paired = compare_profiles(reference, current).set_index("column")
    columns = [f"{stat}{side}" for stat in SHOWN_STATS for side in ("_ref", "_cur")]
    paired = paired[columns].copy()
    # Minimum and maximum are numbers or timestamps, categories are value lists: one Arrow
    # column holds only one type, so these are shown as text.
    for name in columns:
        if name.startswith(("min", "max", "top_categories")):
            paired[name] = paired[name].map(_text)
    return paired.rename(
        columns=lambda name: name.replace("_ref", " (reference)").replace("_cur", " (current)")
    )


def _schema_section(report: SchemaReport, version: str) -> None:
    st.subheader("Schema against the model signature")
    if report.ok:
        st.success(
            f"The current data matches the signature of v{version} "
            f"({len(report.checked_columns)} input columns checked)."
        )
        return
    st.error(f"{len(report.problems)} problem(s) against the signature of v{version}.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "column": p.column,
                    "problem": p.kind,
                    "expected": p.expected,
                    "observed": p.observed,
                    "detail": p.detail,
                }
                for p in report.problems
            ]
        ),
        hide_index=True,
        width="stretch",
    )


st.title("Data profiles")
st.caption(
    "Column statistics of a model's reference set and its current data side by side, the "
    "current data checked against the version's signature and for freshness."
)

selection = select_data(
    current,
    "profile",
    "Upload a CSV or Parquet file to profile it next to the reference set.",
    "Larger inputs are profiled on a random sample of this many rows (fixed seed).",
)
model, version, window, upload = (
    selection.model,
    selection.version,
    selection.window,
    selection.upload,
)
sample_size = selection.sample_size
policy = selection.policy

reference = or_stop(_reference, current, model, version, sample_size)
data = or_stop(_current, current, model, window, sample_size, upload)
# Descriptions carry dataset names and paths from MLflow: text, never Markdown.
st.caption(
    plain(
        f"Reference: v{version}, {reference.description} ({reference.caption}). "
        f"Current: {data.description} ({data.caption}). Profiled: {len(reference.frame):,} "
        f"reference and {len(data.frame):,} current rows (at most {sample_size:,} per side)."
    )
)

st.subheader("Freshness")
max_age = timedelta(hours=policy.data.max_age_hours)
if upload is None:
    bounds = or_stop(current_bounds, current, policy.data)
    fresh = freshness(bounds[1] if bounds else None, max_age)
    where = "the configured source"
elif policy.data.timestamp_column in data.frame:
    fresh = or_stop(freshness, data.frame, max_age, timestamp_column=policy.data.timestamp_column)
    where = "the uploaded file"
else:
    fresh = None
    st.caption(f"The uploaded file has no {policy.data.timestamp_column!r} column to date it.")
if fresh is not None:
    (st.success if fresh.fresh else st.warning)(f"{fresh.message} (newest row of {where})")

_schema_section(or_stop(_schema, current, model, version, data.frame), version)

st.subheader("Columns")
st.dataframe(_profile_table(reference.frame, data.frame), width="stretch")
shared = [c for c in reference.frame.columns if c in data.frame.columns]
if shared:
    column = st.selectbox("Distribution of", shared, key="profile_column")
    st.plotly_chart(
        or_stop(column_distribution_figure, reference.frame, data.frame, column),
        width="stretch",
    )
else:
    st.warning("The reference set and the current data have no column in common.")

st.subheader("Evidently data summary")
summary_rows = int(
    st.number_input(
        "Rows per side in the summary",
        min_value=100,
        value=DEFAULT_SUMMARY_SAMPLE,
        step=1000,
        key="profile_summary_rows",
    )
)
key = (model, version, window, sample_size, upload and upload[0], summary_rows)
if st.button("Build Evidently's DataSummaryPreset report"):
    st.session_state[SUMMARY_KEY] = key
if st.session_state.get(SUMMARY_KEY) == key:
    summary = or_stop(_summary, data.frame, reference.frame, summary_rows)
    st.caption(
        f"{summary['engine']}: {summary['sample_rows']:,} current and "
        f"{summary['reference_sample_rows']:,} reference rows."
    )
    st.download_button(
        "Download the summary (HTML)",
        summary["html"],
        file_name=f"profile-{model}-v{version}.html",
        mime="text/html",
    )
    show_report(summary["html"])

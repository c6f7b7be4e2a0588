"""The behaviour checks of one version: the stored report, and a button that runs them.

The checks run in a sandboxed subprocess (mlops_core.evidence.behaviour); this process only
reads what it reports, so the model's flavor and code are never imported here.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.evidence.behaviour.report import CheckReport, Progress
from mlops_core.evidence.behaviour.run import run_checks
from mlops_core.evidence.behaviour.store import (
    StoredChecks,
    log_check_report,
    stored_check_report,
)
from mlops_core.identity import Actor
from mlops_core.people.access import runs_model_code
from mlops_core.redaction import redact
from ui.app_state import REGISTRY_TTL_SECONDS
from ui.charts.checks import latency_figure
from ui.text import plain

SANDBOX_NOTE = (
    "Checks execute the model's code (a pickled model is code) in a separate process with a "
    "time and memory limit; the panel itself never loads the model."
)
NOT_STORED = "No behaviour checks stored for this version — run them"
STATUS_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "clear_error": "clear error",
    "warning": "warning",
    "skipped": "skipped",
}
MISSING_WORDS = {
    "predict": "predicted",
    "clear_error": "clear error",
    "unclear_failure": "unclear failure",
}


def _number(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _yes_no(value: bool | None) -> str:
    return {None: "-", True: "yes", False: "no"}[value]


def key_figures(report: CheckReport) -> dict[str, str]:
    """The report's headline numbers as the page shows them ("-" where not measured)."""
    latency = report.latency
    return {
        "latency p50": _number(latency and latency.p50_ms, " ms"),
        "latency p95": _number(latency and latency.p95_ms, " ms"),
        "latency p99": _number(latency and latency.p99_ms, " ms"),
        "throughput": _number(report.throughput_rows_per_s, " rows/s", 0),
        "size on disk": _number(report.model_size_mb, " MB"),
        "peak memory loading": _number(report.peak_load_memory_mb, " MB"),
        "deterministic": _yes_no(report.deterministic),
        "missing values": MISSING_WORDS.get(report.missing_values or "", "-"),
    }


def outcomes_frame(report: CheckReport) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"check": o.name, "result": STATUS_WORDS.get(o.status, o.status), "detail": o.detail}
            for o in report.outcomes
        ],
        columns=["check", "result", "detail"],
    )


def show_report(report: CheckReport, max_p99_ms: float | None, key: str) -> None:
    """A stored report: where it came from, key figures, outcomes, warnings, histogram."""
    st.caption(
        plain(
            f"Checked {report.created_at} on {report.rows_used:,} rows ({report.input_source}), "
            f"limits {report.limits.timeout_s:g} s and {report.limits.memory_mb:,} MB."
        )
    )
    if report.failure:
        st.error(plain(f"The sandbox did not complete: {report.failure}"))
    figures = key_figures(report)
    for row in (list(figures.items())[:4], list(figures.items())[4:]):
        for column, (label, value) in zip(st.columns(4), row, strict=True):
            column.metric(label, value)
    for warning in report.requirement_warnings:
        st.warning(plain(warning))
    if report.outcomes:
        st.dataframe(
            outcomes_frame(report),
            hide_index=True,
            width="stretch",
            column_config={"detail": st.column_config.TextColumn(width="large")},
            key=f"{key}_outcomes",
        )
    latency = report.latency
    if latency is not None and latency.samples_ms:
        title = f"{report.model} v{report.version}: single-row latency"
        st.plotly_chart(
            latency_figure(latency, title, max_p99_ms), width="stretch", key=f"{key}_latency"
        )


def _run(current: Settings, actor: Actor, model: str, version: str) -> CheckReport | None:
    """Run the checks in the sandbox with a progress bar, then store the report as `actor`."""
    with st.status(plain(f"Running the behaviour checks of {model} v{version}…")) as status:
        bar = st.progress(0.0, text="Starting the sandbox…")

        def on_progress(progress: Progress) -> None:
            text = f"{progress.step}: {progress.message}" if progress.message else progress.step
            bar.progress(progress.fraction, text=plain(text))

        try:
            report = run_checks(current, model, version, on_progress=on_progress)
            log_check_report(current, report, actor)
        except MlopsError as exc:
            status.update(label="The behaviour checks could not run", state="error")
            st.error(plain(redact(str(exc))))
            return None
        bar.progress(1.0, text="Stored.")
        status.update(
            label="Behaviour checks stored" + ("" if report.completed else " (sandbox failed)"),
            state="complete" if report.completed else "error",
        )
    return report


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner=False)
def _stored(
    tracking_uri: str, db_url: str, model: str, version: str, _current: Settings
) -> StoredChecks:
    # Like the other registry reads of a page, kept briefly: every rerun of Approvals drew
    # it again. Gates never read this copy; they verify the stored report themselves.
    return stored_check_report(_current, model, version)


def render_checks(
    current: Settings,
    actor: Actor,
    model: str,
    version: str,
    max_p99_ms: float | None,
    key: str,
) -> None:
    """The behaviour checks section of one version; `key` keeps its widgets apart from
    another version's on the same page."""
    st.markdown("**Behaviour checks**")
    st.caption(SANDBOX_NOTE)
    if runs_model_code(actor) and st.button("Run behaviour checks", key=f"{key}_run"):
        ran = _run(current, actor, model, version)
        if ran is not None:
            _stored.clear()
            st.success(plain(f"Behaviour checks of {model} v{version} stored as evidence."))
    try:
        stored = _stored(current.tracking_uri, current.db_url, model, version, current)
    except MlopsError as exc:
        st.error(plain(redact(str(exc))))
        return
    if stored.nothing_stored:
        st.info(NOT_STORED + ("" if runs_model_code(actor) else " (an approver can)") + ".")
        return
    if stored.report is None:
        # Evidence the panel may not use (replaced, unrecorded, unreadable) says why.
        st.warning(plain(f"Behaviour checks not usable: {stored.why_not}"))
        return
    if stored.source:
        st.caption(plain(stored.source[:1].upper() + stored.source[1:]))
    show_report(stored.report, max_p99_ms, key)

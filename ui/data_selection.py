"""The controls the data pages share: model, reference version, current data, sample size."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from mlops_core.config import Settings
from mlops_core.evidence.fairness_evidence import model_policy
from mlops_core.policy import DriftPolicy, ModelPolicy
from mlops_core.stores.model_data import WindowChoice, window_choices
from ui.app_state import REGISTRY_TTL_SECONDS, cached_overview, or_stop
from ui.text import plain

CONFIGURED = "Configured source"
UPLOAD = "Upload a file"


@dataclass(frozen=True)
class DataSelection:
    model: str
    policy: ModelPolicy
    version: str
    champion: str | None
    window: WindowChoice | None
    upload: tuple[str, bytes] | None
    sample_size: int


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the current data's time span…")
def _windows(current: Settings, model: str) -> list[WindowChoice]:
    return window_choices(current, model_policy(current, model))


def _current_data(
    current: Settings, model: str, policy: ModelPolicy, source: str, prefix: str, hint: str
) -> tuple[WindowChoice | None, tuple[str, bytes] | None]:
    if source == CONFIGURED:
        choices = or_stop(_windows, current, model) if policy.data.has_current else []
        if not choices:
            st.info(
                f"No current data for {model}: configure data.current_table, current_query or "
                "current_files in the policy file, or upload a file."
            )
            st.stop()
        window = st.selectbox(
            "Window", choices, format_func=lambda choice: choice.label, key=f"{prefix}_window"
        )
        return window, None
    uploaded = st.file_uploader(
        "Current data (CSV or Parquet)", type=["csv", "parquet"], key=f"{prefix}_upload"
    )
    if uploaded is None:
        st.info(plain(hint))
        st.stop()
    return None, (uploaded.name, uploaded.getvalue())


def select_data(
    current: Settings, prefix: str, upload_hint: str, sample_help: str
) -> DataSelection:
    """Lay out the shared controls; stops the page with a hint when nothing can be chosen."""
    entries = or_stop(cached_overview, current)
    if not entries:
        st.info(
            "No registered models yet. Run `python -m mlops_core demo` to load the demo scenario."
        )
        st.stop()
    models = {entry.name: entry for entry in entries}
    left, middle, right = st.columns(3)
    model = left.selectbox("Model", list(models), key="model", bind="query-params")
    policy = or_stop(model_policy, current, model)
    versions = [v.version for v in models[model].versions]
    if not versions:
        st.info(plain(f"{model} has no versions yet."))
        st.stop()
    champion = models[model].champion_version
    version = middle.selectbox(
        "Reference: version",
        versions,
        index=versions.index(champion) if champion in versions else 0,
        key=f"{prefix}_version",
        help="Its reference set: the policy's data.reference, else the training dataset "
        "logged with its run (mlflow.log_input), else the run's artifact "
        "reference/reference.parquet. The page names the one it used.",
    )
    served = models[model].served_from
    middle.caption(plain(f"{served}: v{champion}" if champion else f"Served from: {served}."))
    source = right.radio("Current data", [CONFIGURED, UPLOAD], key=f"{prefix}_source")
    window, upload = _current_data(current, model, policy, source, prefix, upload_hint)
    sample_size = int(
        st.number_input(
            "Rows per side",
            min_value=100,
            value=(policy.drift or DriftPolicy()).sample_size or 100_000,
            step=1000,
            key=f"{prefix}_sample",
            help=sample_help,
        )
    )
    return DataSelection(model, policy, version, champion, window, upload, sample_size)

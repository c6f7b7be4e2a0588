"""Overview: every registered model, its champion, and what needs attention."""

import pandas as pd
import streamlit as st

from mlops_core.evidence.fairness_evidence import FairnessStatus, fairness_status
from mlops_core.evidence.monitoring import DriftStatus, latest_drift_status
from mlops_core.evidence.quality_runs import QualityStatus, latest_quality_status
from mlops_core.governance.promotion.reconcile import reconcile
from mlops_core.governance.promotion.state import open_requests
from mlops_core.people.access import page_refusal
from mlops_core.stores.registry import stages_text
from ui.app_state import REGISTRY_TTL_SECONDS, cached_overview, or_stop, registry, settings
from ui.identity import require_page
from ui.text import plain

current = settings()
actor = require_page(current, "overview")


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner=False)
def cached_drift(tracking_uri: str, model: str) -> DriftStatus | None:
    return latest_drift_status(registry(tracking_uri), model)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner=False)
def cached_fairness(tracking_uri: str, model: str, version: str) -> FairnessStatus:
    return fairness_status(registry(tracking_uri), model, version)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner=False)
def cached_quality(tracking_uri: str, model: str) -> QualityStatus | None:
    return latest_quality_status(registry(tracking_uri), model)


st.title("Overview")
st.caption(
    "Every registered model with the version it is served from (the alias or stage the "
    "policy names), its key metric, fairness evidence, the latest logged drift and quality "
    "checks of its production data, and the promotion requests waiting for a decision. "
    "Metrics come from "
    "the champion's training run in MLflow."
)

entries = or_stop(cached_overview, current)
if not entries:
    st.info(
        "No registered models in the tracking store yet. "
        "Run `python -m mlops_core demo` (or `make run`) to load the demo scenario."
    )
    st.stop()

for warning in or_stop(reconcile, current, registry(current.tracking_uri)):
    st.warning(plain(warning.message), icon=":material/sync_problem:")


def _fairness(model: str, version: str | None) -> str:
    if version is None:
        return "-"
    return or_stop(cached_fairness, current.tracking_uri, model, version).label


def _drift(model: str) -> str:
    status = or_stop(cached_drift, current.tracking_uri, model)
    return status.label if status else "no check logged"


def _quality(model: str) -> str:
    status = or_stop(cached_quality, current.tracking_uri, model)
    return status.label if status else "no check logged"


rows = pd.DataFrame(
    [
        {
            "model": e.name,
            "served from": e.served_from,
            "champion": f"v{e.champion_version}" if e.champion_version else "none",
            "key metric": e.key_metric or "-",
            "value": e.key_metric_value,
            "stages": stages_text(e.stages),
            "champion fairness": _fairness(e.name, e.champion_version),
            "latest drift": _drift(e.name),
            "latest quality": _quality(e.name),
            "versions": e.n_versions,
            "champion changed": e.champion_changed_at,
            "description": e.description,
        }
        for e in entries
    ]
)
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={
        "value": st.column_config.NumberColumn("champion's key metric", format="%.4f"),
        "champion changed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)
uncovered = [e.name for e in entries if not e.covered]
if uncovered:
    st.warning(
        plain(
            "No policy covers "
            + ", ".join(uncovered)
            + ": they can be looked at but not promoted. `python -m mlops_core policy init` "
            "drafts a policy from the registry."
        )
    )
without_champion = [e.name for e in entries if e.covered and e.champion_version is None]
if without_champion:
    st.warning(
        plain("Nothing is served yet at the policy's target for: " + ", ".join(without_champion))
    )

st.subheader("Open promotion requests")
pending = or_stop(open_requests, current)
if not pending:
    st.caption("Nothing is waiting for a decision.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "request": r.id,
                    "model": r.model_name,
                    "candidate": f"v{r.version}",
                    "champion at request": f"v{r.champion_version}" if r.champion_version else "-",
                    "status": r.status,
                    "gates at request": r.gate_summary,
                    "requested by": r.requested_by,
                    "reason": r.reason,
                }
                for r in pending
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if page_refusal(actor, "approvals") is None:
        st.page_link(
            "pages/approvals.py",
            label="Review them on the Approvals page",
            icon=":material/fact_check:",
        )

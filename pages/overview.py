"""Overview: every registered model, its champion, and what needs attention."""

import pandas as pd
import streamlit as st

from mlops_core.evidence.fairness_evidence import FairnessStatus, fairness_status
from mlops_core.evidence.monitoring import DriftStatus, latest_drift_status
from mlops_core.evidence.quality_runs import QualityStatus, latest_quality_status
from mlops_core.governance.overview import ModelOverview
from mlops_core.governance.promotion.reconcile import reconcile
from mlops_core.governance.promotion.state import open_requests
from mlops_core.people.access import page_refusal
from mlops_core.rollout.state import running_rollouts
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
    "checks of its production data, the staged rollouts running and the promotion requests "
    "waiting for a decision. "
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


def _drift(model: str) -> DriftStatus | None:
    return or_stop(cached_drift, current.tracking_uri, model)


def _quality(model: str) -> QualityStatus | None:
    return or_stop(cached_quality, current.tracking_uri, model)


def _row(entry: ModelOverview) -> dict[str, object]:
    drift = _drift(entry.name)
    quality = _quality(entry.name)
    return {
        "model": entry.name,
        "champion": (f"v{entry.champion_version}" if entry.champion_version else "none")
        + f" ({entry.served_from})",
        "key metric": entry.key_metric or "-",
        "value": entry.key_metric_value,
        "stages": stages_text(entry.stages),
        "fairness": _fairness(entry.name, entry.champion_version),
        "drift": drift.verdict if drift else "no check logged",
        "drift window": drift.window if drift else "",
        "quality": quality.status if quality else "no check logged",
        "versions": entry.n_versions,
        "since": entry.champion_changed_at,
    }


# Short cells keep every column on screen: the long drift story is on the Drift page,
# descriptions on the Models page, and stages only where some model has them.
table = pd.DataFrame([_row(e) for e in entries])
if not table["stages"].any():
    table = table.drop(columns="stages")
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "value": st.column_config.NumberColumn(
            format="%.4f", help="The champion's key metric, from its training run"
        ),
        "fairness": st.column_config.TextColumn(help="The champion's fairness evidence"),
        "drift": st.column_config.TextColumn(
            help="The latest logged drift check of the production data"
        ),
        "quality": st.column_config.TextColumn(
            help="The latest logged quality check of the production data (Quality page)"
        ),
        "since": st.column_config.DatetimeColumn(
            format="YYYY-MM-DD", help="When the champion last changed"
        ),
    },
)
for entry in entries:
    quality = _quality(entry.name)  # cached: the table above read it already
    if quality is not None and quality.status == "alert":
        st.warning(plain(f"{entry.name}: {quality.summary}"), icon=":material/trending_down:")
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

st.subheader("Staged rollouts")
rollouts = or_stop(running_rollouts, current)
if not rollouts:
    st.caption("No rollout is running.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": r.rollout.model,
                    "version": f"v{r.rollout.version}",
                    "stage": r.stage_text,
                    "mode": r.rollout.stage.mode,
                    "traffic": f"{r.rollout.traffic:g}%",
                    "status": r.rollout.status,
                    "last evaluation": r.verdict,
                    "evaluated": r.latest.evaluated_at if r.latest else None,
                }
                for r in rollouts
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "traffic": st.column_config.TextColumn(help="The challenger's share of requests"),
            "evaluated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
    if page_refusal(actor, "rollouts") is None:
        st.page_link(
            "pages/rollouts.py",
            label="Watch them on the Rollouts page",
            icon=":material/alt_route:",
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

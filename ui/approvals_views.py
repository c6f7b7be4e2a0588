"""How the approvals page lays out requests, their evidence and their decisions."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from mlops_core.governance import decision_record
from mlops_core.governance.decision_record import DecisionRecord
from mlops_core.governance.gates import DRIFT_KIND, FAIRNESS_KIND, GateResult, summarize
from mlops_core.governance.live_gate import LIVE_KIND
from mlops_core.governance.promotion.state import RequestView, describe
from mlops_core.policy import describe_target
from ui.text import plain

VERDICT_WORDS = {"approve": "approved", "reject": "rejected"}
# Streamlit's bundled Material icons, coloured: emoji show as empty boxes where no emoji
# font is installed. Tables and select boxes cannot show icons, so they give the word alone.
STATUS_ICONS = {
    "passed": ":green[:material/check_circle:]",
    "failed": ":red[:material/cancel:]",
    "not_evaluated": ":orange[:material/warning:]",
    "not_configured": ":red[:material/block:]",
}
# Request status -> (icon, badge colour).
REQUEST_STATUS_BADGES = {
    "pending": (":material/schedule:", "blue"),
    "approved": (":material/thumb_up:", "green"),
    "applying": (":material/hourglass_top:", "orange"),
    "applied": (":material/check_circle:", "green"),
    "rejected": (":material/block:", "red"),
    "cancelled": (":material/do_not_disturb_on:", "gray"),
    "stale": (":material/hourglass_disabled:", "gray"),
    "rolled_back": (":material/undo:", "violet"),
}


def _status(status: str) -> str:
    return status.replace("_", " ")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def request_label(view: RequestView) -> str:
    return (
        f"#{view.id} {view.model_name} v{view.version}: {view.status.replace('_', ' ')} "
        f"— {view.requested_by}"
    )


def requests_table(views: list[RequestView]) -> None:
    rows = pd.DataFrame(
        [
            {
                "id": v.id,
                "model": v.model_name,
                "version": f"v{v.version}",
                "champion at request": f"v{v.champion_version}" if v.champion_version else "none",
                "status": _status(v.status),
                "requested by": v.requested_by,
                "approvals": f"{len(v.approvers)} of {v.approvals_required}",
                "gates at request": v.gate_summary,
                "requested": v.created_at,
                "note": v.last_error or "",
            }
            for v in views
        ]
    )
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={"requested": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )


def gates_frame(results: list[GateResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "gate": g.name,
                "status": _status(g.status),
                "observed": g.observed
                if not isinstance(g.observed, float)
                else round(g.observed, 4),
                "threshold": g.threshold,
                "reason": g.reason,
                "evidence": g.evidence,
            }
            for g in results
        ],
        columns=["gate", "status", "observed", "threshold", "reason", "evidence"],
    ).astype({"observed": "string", "threshold": "string"})


def gates_side_by_side(columns: dict[str, list[GateResult]]) -> pd.DataFrame:
    """One row per gate, one status column per moment (at request, at a decision, now)."""
    names: list[str] = []
    for results in columns.values():
        names += [g.name for g in results if g.name not in names]
    table = {"gate": names}
    for label, results in columns.items():
        by_name = {g.name: g for g in results}
        table[label] = [
            _status(by_name[n].status) + _observed(by_name[n]) if n in by_name else "-"
            for n in names
        ]
    return pd.DataFrame(table)


def _observed(gate: GateResult) -> str:
    if isinstance(gate.observed, float):
        return f" ({gate.observed:.4f})"
    return ""


def latest_gates(view: RequestView, now: list[GateResult] | None) -> list[GateResult]:
    """The most recent gate results known for the request."""
    if now is not None:
        return now
    if view.decisions:
        return view.decisions[-1].gates
    return view.gates_at_request


def request_header(view: RequestView) -> None:
    target = describe_target(view.alias)
    st.subheader(plain(f"Request #{view.id}: {view.model_name} v{view.version} → {target}"))
    icon, colour = REQUEST_STATUS_BADGES.get(view.status, (None, "gray"))
    st.badge(_status(view.status), icon=icon, color=colour)
    champion = f"v{view.champion_version}" if view.champion_version else "none"
    left, right = st.columns(2)
    left.metric("Champion at request", champion)
    right.metric("Approvals", f"{len(view.approvers)} of {view.approvals_required}")
    who = plain(f"{view.requested_by} (via {view.requested_via}), {_when(view.created_at)}")
    st.markdown(f"**Requested by** {who}")
    st.markdown("**Why:**")
    st.text(view.reason)
    if view.needs_retry:
        st.error(plain(describe(view)))


def metrics_table(record: DecisionRecord) -> None:
    st.markdown("**Metrics vs champion at request**")
    if record.metrics_note:
        st.warning(plain(record.metrics_note))
        return
    metrics = record.metrics
    rows = metrics[["metric", "candidate", "champion", "delta"]].assign(
        **{"candidate is": [decision_record.verdict(r) for r in metrics["regression"]]}
    )
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(format="%.4f")
            for name in ("candidate", "champion", "delta")
        },
    )


def drift_summary(gates: list[GateResult]) -> None:
    st.markdown("**Drift of the current data**")
    drift = [g for g in gates if g.kind == DRIFT_KIND]
    if not drift:
        st.caption("The policy has no drift gate for this model.")
        return
    gate = drift[0]
    icon = STATUS_ICONS.get(gate.status, "")
    st.markdown(f"{icon} {plain(f'{_status(gate.status)}: {gate.reason}')}")
    columns = gate.details.get("columns") or {}
    if columns:
        st.dataframe(
            pd.DataFrame(
                [
                    {"column": name, "score": c.get("score"), "drifted": bool(c.get("drifted"))}
                    for name, c in columns.items()
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    st.caption(plain(gate.evidence))


def live_summary(gates: list[GateResult]) -> None:
    """The candidate against the champion on live traffic, when the policy gates on it."""
    live = [g for g in gates if g.kind == LIVE_KIND]
    if not live:
        return
    gate = live[0]
    st.markdown("**Candidate vs champion on live traffic**")
    icon = STATUS_ICONS.get(gate.status, "")
    st.markdown(f"{icon} {plain(f'{_status(gate.status)}: {gate.reason}')}")
    needed = gate.details.get("rows_needed")
    if needed:
        st.caption(
            plain(f"Labelled rows still needed for a verdict at this difference: {needed:,}")
        )
    st.caption(plain(gate.evidence))


def fairness_summary(gates: list[GateResult]) -> None:
    st.markdown("**Fairness of the candidate**")
    fairness = [g for g in gates if g.kind == FAIRNESS_KIND]
    if not fairness:
        st.caption("The policy has no fairness gate for this model.")
        return
    st.dataframe(
        gates_frame(fairness)[["gate", "status", "observed", "threshold"]],
        hide_index=True,
        width="stretch",
    )
    groups = fairness[0].details.get("groups")
    if groups:
        st.caption(plain("Group sizes: " + ", ".join(f"{k}: {v:,}" for k, v in groups.items())))
    st.caption(plain(fairness[0].evidence))


def decisions_list(view: RequestView) -> None:
    if not view.decisions:
        st.caption("No decision yet.")
        return
    for d in view.decisions:
        verdict = "approved with an override" if d.override else VERDICT_WORDS[d.verdict]
        with st.container(border=True):
            when = plain(f"{_when(d.created_at)} ({summarize(d.gates)})")
            st.markdown(f"**{plain(d.actor)}** {verdict} — {when}")
            st.text(d.comment)
            if d.override:
                st.warning(plain(f"Override justification: {d.justification}"))


def record_downloads(record: DecisionRecord) -> None:
    left, right = st.columns(2)
    name = f"decision-record-{record.request.id}"
    left.download_button(
        "Decision record (Markdown)",
        decision_record.to_markdown(record),
        file_name=f"{name}.md",
        mime="text/markdown",
        key=f"record_md_{record.request.id}",
    )
    right.download_button(
        "Decision record (HTML)",
        decision_record.to_html(record),
        file_name=f"{name}.html",
        mime="text/html",
        key=f"record_html_{record.request.id}",
    )


def decisions_history(views: list[RequestView]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "request": v.id,
                "model": v.model_name,
                "version": f"v{v.version}",
                "decided by": d.actor,
                "verdict": "override" if d.override else d.verdict,
                "comment": d.comment,
                "justification": d.justification or "",
                "when": d.created_at,
            }
            for v in views
            for d in v.decisions
        ],
        columns=[
            "request",
            "model",
            "version",
            "decided by",
            "verdict",
            "comment",
            "justification",
            "when",
        ],
    )

"""Rollouts: each model's staged rollout, its guardrails against their thresholds, the
traffic share over time, and the actions an approver may take."""

import pandas as pd
import streamlit as st

from mlops_core.errors import MlopsError
from mlops_core.people.access import holds_role
from mlops_core.rollout.controls import abort, advance_stage, allowed_actions, pause, resume
from mlops_core.rollout.progress import tick_rollout
from mlops_core.rollout.publish import CHALLENGER
from mlops_core.rollout.start import awaiting_start, start_rollout
from mlops_core.rollout.state import (
    COMPLETED,
    RolloutView,
    current_rollout,
    describe,
    evaluations,
    list_rollouts,
    traffic_history,
)
from ui.app_state import or_stop, registry, settings
from ui.charts.rollouts import guardrail_figure, traffic_figure
from ui.identity import require_page
from ui.text import plain

current = settings()
actor = require_page(current, "rollouts")
FLASH_KEY = "rollouts_flash"
STATUS_ICONS = {"pass": ":material/check_circle:", "breach": ":material/error:"}

st.title("Rollouts")
st.caption(
    "A version approved for a model whose policy plans a staged rollout goes shadow → split "
    "traffic → champion. Each stage is left once its minimums are met and every guardrail "
    "holds; a breached guardrail rolls it back. The state is published in the MLflow registry "
    f"(alias `{CHALLENGER}`, tags `mlops.rollout.*`), where a router reads it."
)

kind, message = st.session_state.pop(FLASH_KEY, (None, None))
if kind:
    getattr(st, kind)(plain(message))


def act(call, done: str) -> None:
    """Run a core action; show its refusal now, its outcome after the rerun."""
    try:
        result = call()
    except MlopsError as exc:
        st.error(plain(str(exc)))
        return
    text = describe(result) if isinstance(result, RolloutView) else result.message
    st.session_state[FLASH_KEY] = ("success", f"{done}: {text}")
    st.rerun()


reg = registry(current.tracking_uri)
waiting = or_stop(awaiting_start, current)
if waiting:
    st.subheader("Approved, waiting for their rollout")
    for request in waiting:
        line = st.container(horizontal=True, vertical_alignment="center")
        line.markdown(
            plain(f"Request #{request.id}: {request.model_name} v{request.version}, approved by ")
            + plain(", ".join(request.approvers))
        )
        if holds_role(actor, "approver") and line.button(
            "Start rollout", key=f"start_{request.id}", type="primary"
        ):
            act(lambda r=request: start_rollout(current, reg, actor, r.id), "Started")

models = sorted({view.model for view in or_stop(list_rollouts, current)})
if not models:
    st.info(
        "No rollouts yet. Approve a request for a model whose policy has a "
        '`[models."name".rollout]` plan, then start its rollout here or with '
        "`python -m mlops_core rollout start --request ID`."
    )
    st.stop()

model = st.selectbox("Model", models, key="rollout_model")
view = or_stop(current_rollout, current, model)
history = or_stop(evaluations, current, view.id)

st.subheader(plain(f"Rollout #{view.id}: {view.model} v{view.version}"))
(st.success if view.status == COMPLETED else st.info)(plain(describe(view)))
facts = st.columns(4)
facts[0].metric("Status", view.status.replace("_", " "))
facts[1].metric("Challenger's traffic", f"{view.traffic:g}%")
facts[2].metric("Champion", f"v{view.champion_version}")
facts[3].metric("Stage started (UTC)", f"{view.stage_started_at:%m-%d %H:%M}")

st.markdown("**Plan**")
for index, (column, stage) in enumerate(
    zip(st.columns(len(view.plan.stages)), view.plan.stages, strict=True)
):
    if view.status == COMPLETED or index < view.stage_index:
        icon, state = ":material/check_circle:", "done"
    elif index == view.stage_index and view.is_active:
        icon, state = ":material/play_circle:", "current"
    elif index == view.stage_index:
        icon, state = ":material/cancel:", view.status.replace("_", " ")
    else:
        icon, state = ":material/radio_button_unchecked:", "next"
    share = "shadow" if stage.mode == "shadow" else f"{stage.traffic:g}% split"
    column.markdown(f"{icon} **{plain(stage.name)}**  \n{share} · {state}")
    column.caption(
        f"at least {stage.min_duration_minutes:g} min, {stage.min_requests} requests, "
        f"{stage.min_labelled} labelled"
    )

if holds_role(actor, "approver") and view.is_active:
    allowed = allowed_actions(actor, view)
    reason = st.text_input("Reason (for pause, resume, abort)", key="rollout_reason", max_chars=500)
    buttons = st.container(horizontal=True)
    if buttons.button("Evaluate now", key="rollout_tick"):
        act(lambda: tick_rollout(current, reg, view.id), "Evaluated")
    controls = {
        "pause": (pause, "Paused"),
        "resume": (resume, "Resumed"),
        "abort": (abort, "Aborted"),
    }
    for action in allowed:
        if not buttons.button(action.capitalize(), key=f"rollout_{action}"):
            continue
        if action == "advance":
            act(lambda: advance_stage(current, reg, actor, model), "Advanced")
        else:
            control, done = controls[action]
            act(lambda c=control: c(current, reg, actor, model, reason), done)

if not history and view.is_active:
    st.caption("Not evaluated yet: `rollout tick` evaluates it (a scheduler runs it every minute).")
    st.stop()
if not history:
    st.caption("It ended before any evaluation.")
    st.stop()

latest = history[-1]
when = f"{latest.evaluated_at:%Y-%m-%d %H:%M:%S} UTC"
st.markdown(f"**Latest evaluation** ({when}, stage {plain(latest.stage)})")
st.caption(plain(latest.summary) + f" · evidence sha256 `{latest.sha256[:16]}…`")
guardrails = latest.evidence.get("guardrails", [])
if guardrails:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "guardrail": g["name"],
                    "status": g["status"].replace("_", " "),
                    "observed": g["observed"],
                    "threshold": g["threshold"],
                    "numbers": g["detail"],
                }
                for g in guardrails
            ]
        ),
        hide_index=True,
        width="stretch",
    )
minimums = latest.evidence.get("minimums", [])
if minimums:
    st.dataframe(pd.DataFrame(minimums), hide_index=True, width="stretch")

charts = st.columns(2)
charts[0].plotly_chart(traffic_figure(or_stop(traffic_history, current, view)), width="stretch")
names = sorted({g["name"] for e in history for g in e.evidence.get("guardrails", [])})
for index, name in enumerate(names, start=1):
    charts[index % 2].plotly_chart(
        guardrail_figure(history, name), width="stretch", key=f"chart_{name}"
    )

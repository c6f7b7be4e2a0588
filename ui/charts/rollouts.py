"""A rollout's charts: each guardrail against its threshold, and the traffic share."""

from __future__ import annotations

import plotly.graph_objects as go

from mlops_core.rollout.state import EvaluationView, TrafficPoint

OBSERVED_COLOR = "#4d7ea8"
THRESHOLD_COLOR = "#e4572e"


def guardrail_figure(evaluations: list[EvaluationView], name: str) -> go.Figure:
    """The guardrail's observed value at every evaluation that judged it, with its limit."""
    times, observed, thresholds, stages = [], [], [], []
    for evaluation in evaluations:
        for check in evaluation.evidence.get("guardrails", []):
            if check["name"] == name and check["observed"] is not None:
                times.append(evaluation.evaluated_at)
                observed.append(check["observed"])
                thresholds.append(check["threshold"])
                stages.append(evaluation.stage)
    figure = go.Figure()
    figure.add_scatter(
        x=times,
        y=observed,
        mode="lines+markers",
        name="observed",
        line={"color": OBSERVED_COLOR},
        text=stages,
        hovertemplate="%{x}<br>stage %{text}: %{y:.4g}<extra></extra>",
    )
    figure.add_scatter(
        x=times,
        y=thresholds,
        mode="lines",
        name="threshold",
        line={"color": THRESHOLD_COLOR, "dash": "dash", "shape": "hv"},
    )
    figure.update_layout(
        title=name.replace("_", " "),
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h"},
    )
    return figure


def traffic_figure(points: list[TrafficPoint]) -> go.Figure:
    """The challenger's share of traffic over time, as steps."""
    figure = go.Figure()
    figure.add_scatter(
        x=[p.at for p in points],
        y=[p.traffic for p in points],
        mode="lines+markers",
        line={"shape": "hv", "color": OBSERVED_COLOR},
        text=[p.stage for p in points],
        hovertemplate="%{x}<br>%{text}: %{y:g}%<extra></extra>",
    )
    figure.update_layout(
        title="Challenger's share of traffic (%)",
        yaxis={"range": [0, 100]},
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure

"""The latency histogram of a version's behaviour checks, with its percentiles and the gate."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from mlops_core.evidence.behaviour.report import LatencyStats

BAR_COLOR = "#4d7ea8"
PERCENTILE_COLORS = {"p50": "#29a36a", "p95": "#f2a541", "p99": "#e4572e"}
# p95 and p99 often share a slow tail: their labels go on either side of their lines.
LABEL_SIDES = {"p50": "top right", "p95": "top left", "p99": "top right"}
GATE_COLOR = "#333333"


def latency_figure(latency: LatencyStats, title: str, max_p99_ms: float | None = None) -> go.Figure:
    """Single-row call latencies as a histogram, dotted lines at p50/p95/p99 and a dashed
    one at the policy's p99 limit when it sets one.

    `title` names the model and version: text from MLflow, so it is escaped (Plotly
    renders a subset of HTML, links included, in titles)."""
    figure = go.Figure(
        go.Histogram(
            x=list(latency.samples_ms),
            marker_color=BAR_COLOR,
            name="calls",
            hovertemplate="%{x} ms: %{y} calls<extra></extra>",
        )
    )
    for name, value in (
        ("p50", latency.p50_ms),
        ("p95", latency.p95_ms),
        ("p99", latency.p99_ms),
    ):
        figure.add_vline(
            x=value,
            line_dash="dot",
            line_color=PERCENTILE_COLORS[name],
            annotation_text=f"{name} {value:.1f} ms",
            annotation_position=LABEL_SIDES[name],
        )
    if max_p99_ms is not None:
        figure.add_vline(
            x=max_p99_ms,
            line_dash="dash",
            line_color=GATE_COLOR,
            annotation_text=f"gate: p99 ≤ {max_p99_ms:g} ms",
            annotation_position="bottom left",
        )
    figure.update_layout(
        title=html.escape(title),
        xaxis_title=f"latency of a single-row call (ms), {latency.calls} calls after warm-up",
        yaxis_title="calls",
        yaxis_type="log",
        height=360,
        bargap=0.05,
        showlegend=False,
    )
    return figure

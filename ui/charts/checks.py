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
    marks = [
        (value, "dot", PERCENTILE_COLORS[name], f"{name} {value:.1f} ms", LABEL_SIDES[name])
        for name, value in (
            ("p50", latency.p50_ms),
            ("p95", latency.p95_ms),
            ("p99", latency.p99_ms),
        )
    ]
    if max_p99_ms is not None:
        marks.append(
            (max_p99_ms, "dash", GATE_COLOR, f"gate: p99 ≤ {max_p99_ms:g} ms", "bottom left")
        )
    # Plain shapes and annotations, as `add_vline` would make them: one layout update instead
    # of one validated copy of the layout per line (a tenth of a second on each page run).
    figure.update_layout(
        shapes=[_vline(x, dash, color) for x, dash, color, _, _ in marks],
        annotations=[_label(x, text, side) for x, _, _, text, side in marks],
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


def _vline(x: float, dash: str, color: str) -> dict:
    """A vertical line across the plot at `x`."""
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "xref": "x",
        "y0": 0,
        "y1": 1,
        "yref": "y domain",
        "line": {"dash": dash, "color": color},
    }


def _label(x: float, text: str, side: str) -> dict:
    """A line's label at its top or bottom, on its left or right."""
    vertical, horizontal = side.split()
    return {
        "x": x,
        "xref": "x",
        "y": 1 if vertical == "top" else 0,
        "yref": "y domain",
        "text": text,
        "showarrow": False,
        "xanchor": "left" if horizontal == "right" else "right",
        "yanchor": vertical,
    }

"""Quality over windows per version with its thresholds, and the live comparison's
intervals, for the Quality page."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from mlops_core.evidence.live_comparison import LiveComparison
from mlops_core.evidence.quality import QualityReport

PALETTE = ["#4d7ea8", "#e4572e", "#29a36a", "#9c6ade", "#f2a541"]
# Open markers: the window's labels are still arriving or too few to judge it.
JUDGED_SYMBOL, UNJUDGED_SYMBOL = "circle", "circle-open"


def metric_figure(report: QualityReport, metric: str) -> go.Figure:
    """`metric` of each version per window; windows not judged drawn open, thresholds dashed."""
    frame = report.windows_frame()
    figure = go.Figure()
    for index, version in enumerate(report.versions):
        color = PALETTE[index % len(PALETTE)]
        rows = frame[frame["version"] == version]
        if metric in rows:
            figure.add_trace(
                go.Scatter(
                    x=rows["window_start"],
                    y=rows[metric],
                    mode="lines+markers",
                    name=f"v{version}",
                    line={"color": color},
                    marker={
                        "size": 10,
                        "symbol": [
                            JUDGED_SYMBOL if s == "complete" else UNJUDGED_SYMBOL
                            for s in rows["status"]
                        ],
                    },
                    customdata=list(zip(rows["status"], rows["coverage"], strict=True)),
                    hovertemplate="%{x|%Y-%m-%d}: %{y:.4f}<br>%{customdata[0]}, "
                    "%{customdata[1]:.0%} labelled<extra>v" + version + "</extra>",
                )
            )
        threshold = report.thresholds(version).get(metric)
        if threshold is not None:
            figure.add_hline(
                y=threshold,
                line_dash="dash",
                line_color=color,
                annotation_text=f"v{version} threshold {threshold:.4f}",
            )
    figure.update_layout(
        title=f"{metric} per window (open markers: labels pending or too few)",
        xaxis_title="window start",
        yaxis_title=metric,
        legend_title="version",
    )
    return figure


def comparison_figure(comparison: LiveComparison) -> go.Figure:
    """Challenger minus champion per metric with its confidence interval."""
    rows = [m for m in comparison.metrics if math.isfinite(m.difference)]
    figure = go.Figure(
        go.Scatter(
            x=[m.difference for m in rows],
            y=[m.metric for m in rows],
            mode="markers",
            marker={"size": 10, "color": [_verdict_color(m.verdict) for m in rows]},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [m.ci_high - m.difference for m in rows],
                "arrayminus": [m.difference - m.ci_low for m in rows],
            },
            customdata=[[m.verdict, m.method] for m in rows],
            hovertemplate="%{y}: %{x:+.4f}<br>%{customdata[0]} (%{customdata[1]})<extra></extra>",
        )
    )
    figure.add_vline(x=0, line_dash="dot")
    figure.update_layout(
        title=f"v{comparison.challenger} - v{comparison.champion}, "
        f"{comparison.confidence:.0%} intervals ({comparison.mode})",
        xaxis_title="difference (metric units; lower is better for losses and errors)",
        yaxis={"autorange": "reversed"},
    )
    return figure


def window_comparison_figure(report: QualityReport, metric: str) -> go.Figure:
    """The difference of `metric` in each window with its interval; open markers where the
    window's labels are not complete."""
    rows = [
        (c.start, c.comparison.metric(metric), c.labels_complete)
        for c in report.window_comparisons
        if c.comparison is not None
    ]
    frame = pd.DataFrame(
        [
            {
                "start": start,
                "difference": found.difference,
                "low": found.ci_low,
                "high": found.ci_high,
                "complete": complete,
            }
            for start, found, complete in rows
            if math.isfinite(found.difference)
        ],
        columns=["start", "difference", "low", "high", "complete"],
    )
    figure = go.Figure(
        go.Scatter(
            x=frame["start"],
            y=frame["difference"],
            mode="lines+markers",
            marker={
                "size": 10,
                "symbol": [JUDGED_SYMBOL if c else UNJUDGED_SYMBOL for c in frame["complete"]],
            },
            error_y={
                "type": "data",
                "symmetric": False,
                "array": frame["high"] - frame["difference"],
                "arrayminus": frame["difference"] - frame["low"],
            },
            name="difference",
        )
    )
    figure.add_hline(y=0, line_dash="dot")
    figure.update_layout(
        title=f"{metric}: challenger - champion per window",
        xaxis_title="window start",
        yaxis_title="difference",
    )
    return figure


def _verdict_color(verdict: str) -> str:
    return {"better": "#29a36a", "worse": "#e4572e"}.get(verdict, "#888888")

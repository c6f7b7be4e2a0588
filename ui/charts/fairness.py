"""Plotly figures for the fairness page: rates (a regressor's means and errors) per group,
disparities against thresholds, and a candidate's disparities next to the champion's.

A regressor's differences are in the target's units (say, dollars), so its disparity charts
draw the unit-free ratios and leave the differences to the tables."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlops_core.evidence.fairness import FeatureResult, GroupMetrics
from mlops_core.evidence.fairness_evidence import DisparityDelta
from mlops_core.evidence.regression_fairness import RegressionFeatureResult, RegressionGroupMetrics

RATE_TITLES = {
    "selection_rate": "Selection rate",
    "tpr": "True positive rate",
    "fpr": "False positive rate",
    "precision": "Precision",
    "accuracy": "Accuracy",
}
GROUP_COLOR = "#4d7ea8"
SMALL_GROUP_COLOR = "#b8c4cf"
OVERALL_COLOR = "#333333"
VERDICT_COLORS = {True: "#2a9d8f", False: "#e4572e", None: "#9aa5b1"}
CHAMPION_COLOR = "#9aa5b1"
CANDIDATE_COLOR = "#4d7ea8"
LABEL_COLOR = "#e9c46a"
# A regressor's per-group values, drawn in pairs: what it predicts next to the truth, and
# its two error measures.
REGRESSION_PANELS = {
    "Mean prediction and mean label": (
        ("mean_prediction", GROUP_COLOR),
        ("mean_label", LABEL_COLOR),
    ),
    "Errors": (("mae", GROUP_COLOR), ("rmse", LABEL_COLOR)),
}


def charted_metrics(feature: FeatureResult | RegressionFeatureResult) -> list[str]:
    """The disparities a chart can put on one axis: all of a classifier's (rates), a
    regressor's ratios."""
    if isinstance(feature, RegressionFeatureResult):
        return [m for m in feature.metrics if m.endswith("_ratio")]
    return list(feature.metrics)


def _number(value: float | None) -> float | None:
    # Plotly leaves a None bar out; NaN would be drawn as an empty but hoverable slot.
    return None if value is None or math.isnan(value) else value


def group_rates_figure(feature: FeatureResult, overall: GroupMetrics) -> go.Figure:
    """One panel per rate: a bar per group, the overall value as a dashed line.

    Groups too small for the disparities are drawn pale; an undefined rate has no bar.
    """
    names = [g.group for g in feature.groups]
    colors = [SMALL_GROUP_COLOR if g.insufficient_data else GROUP_COLOR for g in feature.groups]
    figure = make_subplots(
        rows=1, cols=len(RATE_TITLES), subplot_titles=list(RATE_TITLES.values()), shared_yaxes=True
    )
    for column, rate in enumerate(RATE_TITLES, start=1):
        values = [_number(getattr(g, rate)) for g in feature.groups]
        figure.add_bar(
            x=names,
            y=values,
            marker_color=colors,
            customdata=[[g.count, "yes" if g.insufficient_data else "no"] for g in feature.groups],
            hovertemplate=(
                "%{x}: %{y:.3f}<br>rows: %{customdata[0]}<br>"
                "too small to compare: %{customdata[1]}<extra></extra>"
            ),
            showlegend=False,
            row=1,
            col=column,
        )
        overall_value = _number(getattr(overall, rate))
        if overall_value is not None:
            figure.add_hline(
                y=overall_value,
                line_dash="dash",
                line_color=OVERALL_COLOR,
                annotation_text=f"overall {overall_value:.3f}",
                annotation_position="top left",
                annotation_font_size=10,
                row=1,
                col=column,
            )
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%")
    figure.update_layout(
        title=f"Rates per group of {feature.name}", height=380, margin={"t": 80}, bargap=0.3
    )
    return figure


def group_values_figure(
    feature: RegressionFeatureResult, overall: RegressionGroupMetrics
) -> go.Figure:
    """A regressor's groups: mean prediction beside mean label, MAE beside RMSE."""
    names = [g.group for g in feature.groups]
    figure = make_subplots(
        rows=1, cols=len(REGRESSION_PANELS), subplot_titles=list(REGRESSION_PANELS)
    )
    for column, pairs in enumerate(REGRESSION_PANELS.values(), start=1):
        for field, color in pairs:
            figure.add_bar(
                x=names,
                y=[_number(getattr(g, field)) for g in feature.groups],
                name=field,
                marker_color=color,
                customdata=[[g.count] for g in feature.groups],
                hovertemplate=(
                    f"%{{x}} {field}: %{{y:,.4g}}<br>rows: %{{customdata[0]}}<extra></extra>"
                ),
                row=1,
                col=column,
            )
        overall_value = _number(getattr(overall, pairs[0][0]))
        if overall_value is not None:
            figure.add_hline(
                y=overall_value,
                line_dash="dash",
                line_color=OVERALL_COLOR,
                annotation_text=f"overall {pairs[0][0]} {overall_value:,.4g}",
                annotation_position="top left",
                annotation_font_size=10,
                row=1,
                col=column,
            )
    figure.update_layout(
        title=f"Per group of {feature.name}", height=380, margin={"t": 80}, barmode="group"
    )
    return figure


def disparity_figure(feature: FeatureResult | RegressionFeatureResult) -> go.Figure:
    """Each disparity as a bar coloured by its check, its threshold as a marker."""
    checks = {c.metric: c for c in feature.checks}
    metrics = charted_metrics(feature)
    values = [_number(feature.disparity(m)) for m in metrics]
    colors = [
        VERDICT_COLORS[checks[m].passed] if m in checks else VERDICT_COLORS[None] for m in metrics
    ]
    figure = go.Figure()
    figure.add_bar(
        y=metrics,
        x=values,
        orientation="h",
        marker_color=colors,
        text=["undefined" if v is None else f"{v:.3f}" for v in values],
        textposition="outside",
        name="value",
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    )
    limited = [m for m in metrics if m in checks]
    figure.add_scatter(
        y=limited,
        x=[checks[m].threshold for m in limited],
        mode="markers",
        marker={"symbol": "line-ns-open", "size": 26, "line": {"width": 3}, "color": "black"},
        name="threshold",
        customdata=[checks[m].bound for m in limited],
        hovertemplate="%{y}: %{customdata} %{x}<extra></extra>",
    )
    # Every charted disparity lies in [0, 1]; room on the right keeps the labels of long bars.
    figure.update_layout(
        title=f"Disparities of {feature.name} against the policy's thresholds",
        xaxis={"title": "differences: 0 is parity; ratios: 1 is parity", "range": [0, 1.15]},
        yaxis={"autorange": "reversed"},
        height=300,
        legend={"orientation": "h", "y": 1.15, "x": 1, "xanchor": "right"},
    )
    return figure


def comparison_figure(
    rows: list[DisparityDelta],
    feature: FeatureResult | RegressionFeatureResult,
    candidate: str,
    champion: str,
) -> go.Figure:
    """The candidate's and the champion's disparities for one feature, with thresholds."""
    charted = charted_metrics(feature)
    shown = [r for r in rows if r.feature == feature.name and r.metric in charted]
    metrics = [r.metric for r in shown]
    figure = go.Figure()
    for name, color, values in (
        (f"champion v{champion}", CHAMPION_COLOR, [r.champion for r in shown]),
        (f"candidate v{candidate}", CANDIDATE_COLOR, [r.candidate for r in shown]),
    ):
        figure.add_bar(
            x=metrics,
            y=[_number(v) for v in values],
            name=name,
            marker_color=color,
            hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>",
        )
    limited = [r for r in shown if r.threshold is not None]
    figure.add_scatter(
        x=[r.metric for r in limited],
        y=[r.threshold for r in limited],
        mode="markers",
        marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3}, "color": "black"},
        name="threshold",
        customdata=[r.bound for r in limited],
        hovertemplate="%{x}: %{customdata} %{y}<extra></extra>",
    )
    figure.update_layout(
        title=f"{feature.name}: candidate v{candidate} against champion v{champion}",
        barmode="group",
        height=360,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure

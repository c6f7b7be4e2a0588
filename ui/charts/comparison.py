"""Plotly figures for comparing runs and model versions.

Each takes the frames `mlops_core.evidence.comparison` returns: `Comparison.frame()` (one row
per run with `label`, `params.*` and `metrics.*` columns) or `metric_histories` (label, step,
value).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from mlops_core.errors import InvalidInput

MISSING = "(none)"


def _short(column: str) -> str:
    return column.split(".", 1)[-1]


def _numeric(values: pd.Series) -> pd.Series | None:
    """The values as numbers if every present one is a number (params are text in MLflow)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if numbers.notna().sum() == values.notna().sum() else None


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"No compared run has {', '.join(missing)}.")


def _dimension(values: pd.Series) -> dict:
    numbers = _numeric(values)
    if numbers is not None:
        return {"label": _short(str(values.name)), "values": numbers.tolist()}
    # Categorical params get one evenly spaced tick per value.
    text = values.astype(object).where(values.notna(), MISSING).astype(str)
    categories = sorted(text.unique())
    codes = [categories.index(v) for v in text]
    return {
        "label": _short(str(values.name)),
        "values": codes,
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def parallel_coordinates(
    frame: pd.DataFrame, dimensions: list[str], color: str | None = None
) -> go.Figure:
    """One line per run across the chosen params and metrics, coloured by a metric."""
    if not dimensions:
        raise InvalidInput("Choose at least one param or metric for the parallel coordinates.")
    _require(frame, dimensions + ([color] if color else []))
    line: dict = {"color": "#4d7ea8"}
    if color:
        line = {
            "color": pd.to_numeric(frame[color], errors="coerce").tolist(),
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": _short(color)}},
        }
    figure = go.Figure(
        go.Parcoords(line=line, dimensions=[_dimension(frame[d]) for d in dimensions])
    )
    figure.update_layout(margin={"l": 60, "r": 60, "t": 60, "b": 30})
    return figure


def metric_history_figure(history: pd.DataFrame, metric: str) -> go.Figure:
    """The metric over steps, one line per run, overlaid."""
    figure = go.Figure()
    for label, points in history.groupby("label", sort=False):
        points = points.sort_values("step")
        figure.add_trace(
            go.Scatter(x=points["step"], y=points["value"], mode="lines+markers", name=str(label))
        )
    figure.update_layout(
        title=f"{metric} by step",
        xaxis_title="step",
        yaxis_title=metric,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def scatter_figure(frame: pd.DataFrame, x: str, y: str) -> go.Figure:
    """One point per run, labelled, of any param or metric against another."""
    _require(frame, [x, y])
    figure = go.Figure(
        go.Scatter(
            x=_axis_values(frame[x]),
            y=_axis_values(frame[y]),
            mode="markers+text",
            text=frame["label"],
            textposition="top center",
            marker={"size": 12},
        )
    )
    figure.update_layout(xaxis_title=_short(x), yaxis_title=_short(y))
    return figure


def _axis_values(values: pd.Series) -> list:
    numbers = _numeric(values)
    if numbers is not None:
        return numbers.tolist()
    return values.astype(object).where(values.notna(), MISSING).astype(str).tolist()

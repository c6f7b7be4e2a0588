"""Reference-versus-current distribution of one column, for the drift page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mlops_core.errors import InvalidInput
from mlops_core.evidence.drift import infer_column_type
from mlops_core.evidence.drift_stattests import Kind

# More categories than this would make unreadable bars; the rarest are pooled.
MAX_CATEGORIES = 20
OTHER_CATEGORIES = "(other)"
MAX_BINS = 50
REFERENCE_COLOR = "#4d7ea8"
CURRENT_COLOR = "#e4572e"


def distribution_figure(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column: str,
    column_type: Kind | None = None,
) -> go.Figure:
    """Shares of rows per bin (numeric, bins shared by both sides) or per category."""
    for frame, side in ((reference, "reference"), (current, "current")):
        if column not in frame.columns:
            raise InvalidInput(f"Column '{column}' is not in the {side} data.")
    kind = column_type or infer_column_type(reference[column])
    if kind == "num":
        figure = _numeric_figure(reference[column], current[column])
    elif kind == "cat":
        figure = _categorical_figure(reference[column], current[column])
    else:
        raise InvalidInput(f"Column '{column}' holds neither numbers nor categories.")
    figure.update_layout(
        title=f"Distribution of {column}",
        xaxis_title=column,
        yaxis_title="share of rows",
        yaxis_tickformat=".0%",
        legend={"orientation": "h", "y": 1.1},
    )
    return figure


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _numeric_figure(reference: pd.Series, current: pd.Series) -> go.Figure:
    reference_values, current_values = _finite(reference), _finite(current)
    combined = np.concatenate([reference_values, current_values])
    if not len(combined):
        raise InvalidInput(f"Column '{reference.name}' has no numeric values to plot.")
    edges = np.histogram_bin_edges(combined, bins="sturges")
    if len(edges) > MAX_BINS + 1:
        edges = np.linspace(edges[0], edges[-1], MAX_BINS + 1)
    # Counted here rather than by go.Histogram so the browser gets bins, not every row.
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    figure = go.Figure()
    for name, values, color in (
        ("reference", reference_values, REFERENCE_COLOR),
        ("current", current_values, CURRENT_COLOR),
    ):
        shares = _shares(np.histogram(values, edges)[0])
        figure.add_bar(
            x=centers, y=shares, width=widths, name=name, marker_color=color, opacity=0.55
        )
    figure.update_layout(barmode="overlay", bargap=0)
    return figure


def _categorical_figure(reference: pd.Series, current: pd.Series) -> go.Figure:
    table = pd.concat(
        [reference.value_counts(dropna=True), current.value_counts(dropna=True)],
        axis=1,
        keys=["reference", "current"],
    ).fillna(0)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    if len(table) > MAX_CATEGORIES:
        rare = table.iloc[MAX_CATEGORIES - 1 :].sum().rename(OTHER_CATEGORIES)
        table = pd.concat([table.iloc[: MAX_CATEGORIES - 1], rare.to_frame().T])
    labels = [str(label) for label in table.index]
    figure = go.Figure()
    for name, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR)):
        figure.add_bar(x=labels, y=_shares(table[name].to_numpy()), name=name, marker_color=color)
    figure.update_layout(barmode="group")
    return figure

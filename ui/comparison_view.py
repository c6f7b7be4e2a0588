"""The comparison view shared by the experiments and models pages, and their cached reads.

Registry reads are cached for `REGISTRY_TTL_SECONDS`; the sidebar's refresh control clears
them. The view keeps its "only differences" switch in the URL, next to the selection the
page keeps there, so a link opens the same comparison for a colleague.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from mlops_core.evidence.comparison import (
    Comparison,
    compare_runs,
    compare_versions,
    metric_histories,
)
from mlops_core.evidence.run_tree import RunTree, run_tree_page, with_children
from mlops_core.policy import Direction
from mlops_core.stores.registry import ExperimentInfo
from ui.app_state import REGISTRY_TTL_SECONDS, or_stop, registry
from ui.charts.comparison import metric_history_figure, parallel_coordinates, scatter_figure
from ui.text import plain

MISSING = "—"
BEST_STYLE = "background-color: rgba(46, 160, 67, 0.25); font-weight: 600"
HISTORY, PARALLEL, SCATTER = "Metric history", "Parallel coordinates", "Scatter"
CHARTS = (HISTORY, PARALLEL, SCATTER)
CHART_HELP = (
    "Metric history: a metric's value per step of each run. Parallel coordinates: each run "
    "as a line across the chosen params and metrics. Scatter: any two of them."
)
# More axes than this crowd each other at the width of a page.
DEFAULT_PARAM_AXES, DEFAULT_AXES = 5, 8
REFRESH_HINT = (
    f"Registry reads are cached for {REGISTRY_TTL_SECONDS} s; "
    "“Refresh registry data” in the sidebar reloads them."
)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner=False)
def cached_experiments(tracking_uri: str) -> list[ExperimentInfo]:
    return registry(tracking_uri).list_experiments()


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Searching runs…")
def cached_run_tree(
    tracking_uri: str,
    experiment_ids: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    page_size: int,
    top_level_only: bool,
    page_token: str | None,
) -> RunTree:
    return run_tree_page(
        registry(tracking_uri),
        list(experiment_ids),
        filter_string,
        list(order_by) or None,
        page_size,
        page_token,
        top_level_only,
    )


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading child runs…")
def cached_children(
    tracking_uri: str,
    experiment_ids: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    page_size: int,
    top_level_only: bool,
    page_token: str | None,
    expanded: tuple[str, ...],
) -> RunTree:
    """The page `cached_run_tree` returns, with the children of `expanded` under them."""
    page = cached_run_tree(
        tracking_uri, experiment_ids, filter_string, order_by, page_size, top_level_only, page_token
    )
    return with_children(
        registry(tracking_uri), page, list(experiment_ids), expanded, list(order_by) or None
    )


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the runs to compare…")
def cached_run_comparison(
    tracking_uri: str, run_ids: tuple[str, ...], overrides: Mapping[str, Direction]
) -> Comparison:
    return compare_runs(registry(tracking_uri), list(run_ids), overrides)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the versions to compare…")
def cached_version_comparison(
    tracking_uri: str, model: str, versions: tuple[str, ...], overrides: Mapping[str, Direction]
) -> Comparison:
    return compare_versions(registry(tracking_uri), model, list(versions), overrides)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading metric histories…")
def _cached_histories(
    tracking_uri: str, items: tuple[tuple[str, str], ...], metric: str, _comparison: Comparison
) -> pd.DataFrame:
    # `items` (label, run ID) stands for the comparison in the cache key.
    return metric_histories(registry(tracking_uri), _comparison, metric)


def _highlight_best(comparison: Comparison, table: pd.DataFrame) -> Styler:
    mask = comparison.best_mask(table)
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    styles[comparison.labels] = mask.replace({True: BEST_STYLE, False: ""})
    # A metric a run did not log shows as missing, as in the plain tables, not as "nan".
    return table.style.apply(lambda _: styles, axis=None).format(
        precision=4, subset=comparison.labels, na_rep=MISSING
    )


def _tables(comparison: Comparison, only_differences: bool) -> None:
    metrics = comparison.metrics_table(only_differences)
    st.markdown("**Metrics**: the best value of each metric is highlighted.")
    if metrics.empty:
        st.caption("No metric differs." if only_differences else "No metrics logged.")
    else:
        st.dataframe(
            _highlight_best(comparison, metrics),
            hide_index=True,
            placeholder=MISSING,
            key="cmp_metrics",
        )
    params = comparison.params_table(only_differences)
    st.markdown("**Params**")
    if params.empty:
        st.caption("No param differs." if only_differences else "No params logged.")
    else:
        st.dataframe(params, hide_index=True, placeholder=MISSING, key="cmp_params")


def _default_first(options: list[str], preferred: str | None) -> int:
    return options.index(preferred) if preferred in options else 0


def _default_axes(differing: list[str], metrics: list[str], key_column: str | None) -> list[str]:
    """The params that differ, then the key metric and other metrics, up to DEFAULT_AXES."""
    ordered = sorted(metrics, key=lambda m: m != key_column)
    return (differing[:DEFAULT_PARAM_AXES] + ordered)[:DEFAULT_AXES]


def _charts(comparison: Comparison, tracking_uri: str, key_metric: str | None) -> None:
    frame = comparison.frame()
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    params = [c for c in frame.columns if c.startswith("params.")]
    differing = [f"params.{p}" for p in comparison.params_table(only_differences=True)["param"]]
    key_column = f"metrics.{key_metric}" if key_metric else None
    if not params + metrics:
        st.caption("The compared runs logged no params or metrics to chart.")
        return
    # One chart at a time: a browser without GPU draws parallel coordinates (WebGL) in
    # software, seconds per rerun, and charts in hidden tabs are drawn all the same.
    chart = st.segmented_control(
        "Chart", CHARTS, default=CHARTS[0], key="cmp_chart", help=CHART_HELP
    )
    if chart == PARALLEL:
        _parallel_chart(
            frame,
            params + metrics,
            _default_axes(differing, metrics, key_column),
            metrics,
            key_column,
        )
    elif chart == HISTORY:
        _history_chart(comparison, tracking_uri, metrics, key_metric)
    elif chart == SCATTER:
        axes = params + metrics
        _scatter_chart(frame, axes, (differing or params or metrics)[0], key_column)


def _parallel_chart(
    frame: pd.DataFrame,
    axes: list[str],
    default: list[str],
    metrics: list[str],
    key_column: str | None,
) -> None:
    dimensions = st.multiselect(
        "Axes",
        axes,
        default=default,
        format_func=lambda c: c.replace(".", ": ", 1),
        key="cmp_axes",
    )
    color = st.selectbox(
        "Colour by", metrics, index=_default_first(metrics, key_column), key="cmp_color"
    )
    if dimensions:
        figure = or_stop(parallel_coordinates, frame, dimensions, color)
        st.plotly_chart(figure, key="cmp_parallel")


def _history_chart(
    comparison: Comparison, tracking_uri: str, metrics: list[str], key_metric: str | None
) -> None:
    names = [c.split(".", 1)[1] for c in metrics]
    metric = st.selectbox(
        "Metric", names, index=_default_first(names, key_metric), key="cmp_history_metric"
    )
    if metric:
        items = tuple((item.label, item.run_id) for item in comparison.items)
        points = or_stop(_cached_histories, tracking_uri, items, metric, comparison)
        if points.groupby("label").size().max() == 1:
            st.caption(plain(f"{metric} was logged once per run, so each run is a single point."))
        st.plotly_chart(metric_history_figure(points, metric), key="cmp_history")


def _scatter_chart(
    frame: pd.DataFrame, axes: list[str], default_x: str, key_column: str | None
) -> None:
    left, right = st.columns(2)
    x = left.selectbox("x", axes, index=_default_first(axes, default_x), key="cmp_x")
    y = right.selectbox("y", axes, index=_default_first(axes, key_column), key="cmp_y")
    if x and y:
        st.plotly_chart(or_stop(scatter_figure, frame, x, y), key="cmp_scatter")


def render_comparison(
    comparison: Comparison, tracking_uri: str, file_name: str, key_metric: str | None = None
) -> None:
    """Side-by-side params and metrics, a CSV download, and the charts."""
    only_differences = st.toggle(
        "Only differences",
        key="diff",
        bind="query-params",
        help="Hide the params and metrics that are the same in every compared run.",
    )
    _tables(comparison, only_differences)
    st.download_button(
        "Download the comparison (CSV)",
        comparison.to_csv(only_differences),
        file_name=file_name,
        mime="text/csv",
        key="cmp_csv",
    )
    _charts(comparison, tracking_uri, key_metric)

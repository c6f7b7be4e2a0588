"""Experiments: filter runs with MLflow's syntax, page through them on the server, compare 2-10.

Sweeps nest as in MLflow's UI: each run shows how many children it has and its parent; with
"top-level runs only" the children leave the table and can be listed under chosen parents.

The chosen experiments, filter, sort, selected runs and "only differences" live in the URL,
so a link opens the same comparison for a colleague.
"""

import hashlib

import streamlit as st

from mlops_core.errors import InvalidInput
from mlops_core.evidence.comparison import (
    MAX_COMPARED,
    MIN_COMPARED,
    RUN_ATTRIBUTES,
    merge_page_selection,
    order_by_clause,
    parse_id_list,
    run_columns,
    runs_view,
)
from mlops_core.evidence.monitoring import browsing_order
from mlops_core.evidence.run_tree import MAX_CHILDREN_SHOWN, RunTree
from mlops_core.policy import Policy, load_policy, preferred_key_metric
from mlops_core.stores.registry import CHILD_SCAN_LIMIT
from ui.app_state import or_stop, settings
from ui.comparison_view import (
    MISSING,
    REFRESH_HINT,
    cached_children,
    cached_experiments,
    cached_run_comparison,
    cached_run_tree,
    render_comparison,
)
from ui.identity import require_page
from ui.text import plain

current = settings()
require_page(current, "experiments")

PAGE_SIZES = [10, 25, 50, 100, 200]
SELECTION = "runs"
FILTER_EXAMPLE = "metrics.roc_auc > 0.8 and params.model = 'random_forest'"
DEFAULT_SORT = ("start_time", True)
# Session keys: which page of which query is shown, and a counter that resets the table.
NAVIGATION = "experiments_navigation"
TABLE_GENERATION = "experiments_table_generation"
NOTICE = "experiments_notice"


def store_selection(run_ids: list[str]) -> None:
    if run_ids:
        st.query_params[SELECTION] = ",".join(run_ids)
    elif SELECTION in st.query_params:
        del st.query_params[SELECTION]


def reset_table() -> None:
    st.session_state[TABLE_GENERATION] = st.session_state.get(TABLE_GENERATION, 0) + 1


def clear_selection() -> None:
    store_selection([])
    reset_table()


def fetch(tracking_uri: str, query: tuple, token: str | None) -> RunTree | None:
    """A page of runs, or None after telling the person why their filter is not valid."""
    try:
        return cached_run_tree(tracking_uri, *query, token)
    except InvalidInput as exc:
        # Shown as code: a filter is text a person typed, never a link or Markdown.
        st.error("This filter is not valid:")
        st.code(str(exc), language=None, wrap_lines=True)
        st.caption("Example of a valid filter:")
        st.code(FILTER_EXAMPLE, language=None)
        return None


def expand_parents(
    tracking_uri: str, query: tuple, token: str | None, page: RunTree, key: str
) -> RunTree:
    """The page with the children of the parents a person chose listed under them."""
    names = dict(zip(page.runs["run_id"], page.runs["run_name"], strict=True))
    parents = [run_id for run_id in page.runs["run_id"] if page.counts.get(run_id, 0) > 0]
    if not parents:
        return page
    expanded = st.multiselect(
        "List the children of",
        parents,
        format_func=lambda run_id: f"{names[run_id] or run_id[:8]} ({page.counts[run_id]} runs)",
        key=f"open_{key}",
        placeholder="Choose parent runs to list their child runs under them",
    )
    if not expanded:
        return page
    if max(page.counts[p] for p in expanded) > MAX_CHILDREN_SHOWN:
        st.caption(
            f"At most {MAX_CHILDREN_SHOWN} children of a parent are listed, in the sort order."
        )
    return cached_children(tracking_uri, *query, token, tuple(expanded))


def go_to(navigation: dict, index: int, token: str | None = None) -> None:
    if token is not None:
        del navigation["tokens"][index:]
        navigation["tokens"].append(token)
    navigation["index"] = index


def runs_section(
    tracking_uri: str, ids: tuple[str, ...], filter_string: str, selection: list[str]
) -> list[str]:
    """The runs table, one server-side page at a time; returns the selection its ticks
    leave (the comparison below is drawn from it in the same run)."""
    size_column, sort_column, direction_column = st.columns([1, 3, 1])
    page_size = size_column.selectbox(
        "Runs per page", PAGE_SIZES, index=PAGE_SIZES.index(100), key="size", bind="query-params"
    )
    top_level = st.toggle(
        "Top-level runs only",
        key="top",
        bind="query-params",
        help="Leave out child runs (sweep candidates, whose tags.mlflow.parentRunId names "
        "their parent); the children of a parent can then be listed under it.",
    )
    # MLflow cannot list an experiment's keys; the first page's keys offer the columns,
    # children's included, so that the children of a parent can be sorted by their metrics.
    probe = fetch(tracking_uri, (ids, filter_string, (), page_size, False), None)
    if probe is None:
        return selection
    columns = run_columns(probe.runs)
    with st.expander("Columns"):
        shown_metrics = st.multiselect(
            "Metrics", columns.metrics, default=columns.metrics, key="cols_metrics"
        )
        shown_params = st.multiselect(
            "Params", columns.params, default=columns.params, key="cols_params"
        )
        shown_tags = st.multiselect("Tags", columns.tags, key="cols_tags")
    sort = sort_column.selectbox(
        "Sort by (on the server)",
        [*RUN_ATTRIBUTES, *columns.prefixed()],
        key="sort",
        bind="query-params",
    )
    descending = direction_column.toggle("Descending", value=True, key="desc", bind="query-params")
    order_by = () if (sort, descending) == DEFAULT_SORT else (order_by_clause(sort, descending),)

    query = (ids, filter_string, order_by, page_size, top_level)  # cached_run_tree's arguments
    navigation = st.session_state.setdefault(NAVIGATION, {})
    if navigation.get("query") != query:
        navigation.update(query=query, tokens=[None], index=0)
    index = navigation["index"]
    token = navigation["tokens"][index]
    first_page = (order_by, token, top_level) == ((), None, False)
    page = probe if first_page else fetch(tracking_uri, query, token)
    if page is None:
        return selection
    generation = st.session_state.get(TABLE_GENERATION, 0)
    page_key = hashlib.sha1(repr((query, index, generation)).encode()).hexdigest()[:12]
    if top_level:
        page = expand_parents(tracking_uri, query, token, page, page_key)
    view = runs_view(
        page.runs,
        [f"metrics.{m}" for m in shown_metrics]
        + [f"params.{p}" for p in shown_params]
        + [f"tags.{t}" for t in shown_tags],
    )
    if view.empty:
        st.info("No run matches." if filter_string else "These experiments have no runs yet.")
        return selection
    page_ids = view["run_id"].tolist()
    # A new key when listed children move the rows, so ticks follow run IDs, not positions.
    table_key = hashlib.sha1(repr((page_key, page_ids)).encode()).hexdigest()[:12]
    event = st.dataframe(
        view,
        hide_index=True,
        placeholder=MISSING,
        column_order=[c for c in view.columns if c != "run_id"],
        column_config={
            "start_time": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "children": st.column_config.NumberColumn(
                help="Child runs that name this run as parent"
            ),
        },
        key=f"runs_{table_key}",
        on_select="rerun",
        selection_mode="multi-row",
        selection_default={
            "selection": {"rows": [i for i, r in enumerate(page_ids) if r in selection]}
        },
    )
    ticked = [page_ids[row] for row in event.selection.rows]
    update = merge_page_selection(selection, page_ids, ticked)
    if update.selection != selection:
        store_selection(update.selection)
        if update.dropped:
            st.session_state[NOTICE] = (
                f"At most {MAX_COMPARED} runs can be compared; "
                f"{len(update.dropped)} more were not added."
            )
            # The table shows ticks that were refused: drawn again without them.
            reset_table()
            st.rerun()

    previous, position, following = st.columns([1, 2, 1])
    previous.button(
        "◀ Previous",
        disabled=index == 0,
        on_click=go_to,
        args=(navigation, index - 1),
        key="previous_page",
    )
    position.caption(f"Page {index + 1} · {len(view)} runs on this page")
    if not page.counts_complete:
        st.caption(
            f"Child counts read the newest {CHILD_SCAN_LIMIT:,} child runs: larger counts "
            "are at least the number shown."
        )
    if page.top_level_on_client:
        st.caption(
            "This tracking server cannot leave child runs out of a search (it predates "
            "MLflow's IS NULL for tags), so each page drops them and may hold fewer runs."
        )
    following.button(
        "Next ▶",
        disabled=page.next_page_token is None,
        on_click=go_to,
        args=(navigation, index + 1, page.next_page_token),
        key="next_page",
    )
    return update.selection


def comparison_section(tracking_uri: str, selection: list[str], policy: Policy) -> None:
    st.subheader("Comparison")
    if NOTICE in st.session_state:
        st.warning(plain(st.session_state.pop(NOTICE)))
    if len(selection) < MIN_COMPARED:
        st.info(f"Tick {MIN_COMPARED} to {MAX_COMPARED} runs in the table to compare them.")
        return
    st.button("Clear the selection", on_click=clear_selection, key="clear_selection")
    comparison = or_stop(
        cached_run_comparison, tracking_uri, tuple(selection), policy.metric_direction
    )
    render_comparison(
        comparison,
        tracking_uri,
        "runs-comparison.csv",
        preferred_key_metric(comparison.directions),
    )


@st.fragment
def runs_and_comparison(
    tracking_uri: str, ids: tuple[str, ...], filter_string: str, policy: Policy
) -> None:
    """A tick, a page of runs or a sort reruns this part alone, not the whole page."""
    selection = parse_id_list(st.query_params.get(SELECTION))
    if ids:
        selection = runs_section(tracking_uri, ids, filter_string, selection)
    else:
        st.info("Choose one or more experiments to list their runs.")
    comparison_section(tracking_uri, selection, policy)


st.title("Experiments")
st.caption(
    "Choose experiments, narrow the runs down with an MLflow filter, tick 2 to 10 runs "
    "and compare them below. " + REFRESH_HINT
)

policy = or_stop(load_policy, current.policy_file)
experiments = or_stop(cached_experiments, current.tracking_uri)
if not experiments:
    st.info(
        "No experiments in the tracking store yet. "
        "Run `python -m mlops_core demo` to load the demo scenario."
    )
    st.stop()
experiment_ids = {e.name: e.experiment_id for e in experiments}

# Opening the page shows the team's training runs at once, not the panel's monitoring runs.
names = browsing_order(experiment_ids)
chosen = st.multiselect(
    "Experiments",
    names,
    default=names[:1],
    key="exp",
    bind="query-params",
    placeholder="Choose one or more experiments",
)
filter_string = st.text_input(
    "Filter runs",
    key="filter",
    bind="query-params",
    placeholder=FILTER_EXAMPLE,
    help="MLflow search syntax: metrics.*, params.* (quoted values), tags.*, attributes.*, "
    "joined with `and`.",
).strip()
ids = tuple(experiment_ids[name] for name in chosen)
runs_and_comparison(current.tracking_uri, ids, filter_string, policy)

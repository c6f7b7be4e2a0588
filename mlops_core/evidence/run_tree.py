"""Runs as MLflow's own UI nests them: parents with a child count, children under their parent.

Autologged sweeps (GridSearchCV, Optuna, Hyperopt) log one parent run and a child run per
candidate. A page of runs gets a `children` column (how many runs name it as their
`mlflow.parentRunId`) and a `parent` column (the parent's name, or its short ID when the
parent is not on the page); the children of chosen parents can be listed right after them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from mlops_core.stores.registry import PARENT_RUN_TAG, ChildCounts, Registry

CHILDREN, PARENT = "children", "parent"
# Marks a listed child's name so the nesting reads in a flat table.
CHILD_MARK = "↳ "
MAX_CHILDREN_SHOWN = 100


@dataclass(frozen=True)
class RunTree:
    """A page of runs with `children` and `parent` columns."""

    runs: pd.DataFrame
    next_page_token: str | None
    # Children per parent run ID, for the page's runs and the children listed later.
    counts: dict[str, int]
    # False when counting stopped at the registry's scan limit: counts are lower bounds.
    counts_complete: bool
    # True when the tracking server could not leave child runs out and the page dropped them.
    top_level_on_client: bool


def run_tree_page(
    registry: Registry,
    experiment_ids: list[str],
    filter_string: str = "",
    order_by: list[str] | None = None,
    page_size: int = 100,
    page_token: str | None = None,
    top_level_only: bool = False,
) -> RunTree:
    """One server-side page of runs, each with its number of children and its parent."""
    page = registry.search_runs(
        experiment_ids, filter_string, order_by, page_size, page_token, top_level_only
    )
    runs = page.runs
    counts = (
        registry.child_counts(experiment_ids, runs["start_time"].min())
        if len(runs)
        else ChildCounts({}, True)
    )
    return RunTree(
        _with_family(runs, counts.counts, _names(runs)),
        page.next_page_token,
        counts.counts,
        counts.complete,
        page.top_level_on_client,
    )


def with_children(
    registry: Registry,
    tree: RunTree,
    experiment_ids: list[str],
    expanded: Iterable[str],
    order_by: list[str] | None = None,
) -> RunTree:
    """The page with the first MAX_CHILDREN_SHOWN children of each `expanded` parent after it.

    Only parents on the page with children are expanded; the children come in the page's
    order, so sorting by a metric puts the best child first.
    """
    runs = tree.runs
    wanted = {run_id for run_id in expanded if tree.counts.get(run_id, 0) > 0}
    if not wanted:
        return tree
    names = _names(runs)
    parts = []
    for position, run_id in enumerate(runs["run_id"]):
        parts.append(runs.iloc[[position]])
        if run_id in wanted:
            children = registry.child_runs(experiment_ids, run_id, order_by, MAX_CHILDREN_SHOWN)
            listed = _with_family(children.runs, tree.counts, names)
            listed["run_name"] = CHILD_MARK + listed["run_name"].fillna("").astype(str)
            parts.append(listed)
    nested = pd.concat(parts, ignore_index=True)
    return RunTree(
        nested, tree.next_page_token, tree.counts, tree.counts_complete, tree.top_level_on_client
    )


def _names(runs: pd.DataFrame) -> dict[str, str]:
    return {
        run_id: name
        for run_id, name in zip(runs["run_id"], runs["run_name"], strict=True)
        if isinstance(name, str) and name
    }


def _with_family(runs: pd.DataFrame, counts: dict[str, int], names: dict[str, str]) -> pd.DataFrame:
    column = f"tags.{PARENT_RUN_TAG}"
    parents = runs[column] if column in runs.columns else pd.Series(None, index=runs.index)
    return runs.assign(
        **{
            CHILDREN: [int(counts.get(run_id, 0)) for run_id in runs["run_id"]],
            PARENT: [
                None if not isinstance(p, str) else names.get(p, f"{p[:8]}…") for p in parents
            ],
        }
    )

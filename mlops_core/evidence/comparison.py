"""Comparing runs or model versions side by side, and a candidate version against the champion.

Pages lay these DataFrames out and the CLI prints them; the promotion gates reuse
`metric_deltas` for "no regression against the champion beyond a tolerance".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from mlops_core.csv_safety import safe_frame
from mlops_core.errors import InvalidInput
from mlops_core.evidence.run_tree import CHILDREN, PARENT
from mlops_core.policy import (
    KEY_METRIC_PREFERENCE,
    Direction,
    ModelPolicy,
    Policy,
    describe_target,
    goodness,
    metric_direction,
)
from mlops_core.stores.registry import (
    ALIAS_CHANGED_TAG,
    ModelSummary,
    Registry,
    RunDetail,
    VersionInfo,
    stages_text,
)

MIN_COMPARED, MAX_COMPARED = 2, 10
# The start of a long param or tag that a runs-table cell shows.
CELL_CHARS = 200
RUN_ATTRIBUTES = ("start_time", "run_name", "status")
PREFIXES = ("metrics", "params", "tags")
# Metric values are floats read back from a database; equal within this is equal.
TOLERANCE_SLACK = 1e-12
V = TypeVar("V")


# The experiments page: columns, server-side order, selection across pages


@dataclass(frozen=True)
class RunColumns:
    """Metric, param and tag keys found on a page of runs, without their prefixes."""

    metrics: list[str]
    params: list[str]
    tags: list[str]

    def prefixed(self) -> list[str]:
        return [
            f"{prefix}.{key}"
            for prefix, keys in zip(PREFIXES, (self.metrics, self.params, self.tags), strict=True)
            for key in keys
        ]


def run_columns(runs: pd.DataFrame) -> RunColumns:
    """MLflow has no "keys of an experiment" call, so the keys a page of runs carries."""

    def keys(prefix: str) -> list[str]:
        return sorted(c.split(".", 1)[1] for c in runs.columns if c.startswith(f"{prefix}."))

    return RunColumns(*(keys(prefix) for prefix in PREFIXES))


def runs_view(runs: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The runs table as shown: identity first, then the chosen columns, in that order.

    A chosen key that no run on this page has is shown empty rather than dropped, so the
    table keeps its shape from one page to the next. Text longer than a cell shows its start
    (params reach 6,000 characters, tags more); the comparison below shows it whole.
    """
    identity = ["run_id", "run_name", "start_time", "status"]
    family = [c for c in (CHILDREN, PARENT) if c in runs.columns]
    view = runs.reindex(columns=list(dict.fromkeys([*identity, *family, *columns])))
    text = [c for c in view.columns if view[c].dtype == object]
    view[text] = view[text].map(
        lambda value: description_preview(value, CELL_CHARS) if isinstance(value, str) else value
    )
    return view


def order_by_clause(column: str, descending: bool) -> str:
    """MLflow's `order_by` for a runs-table column, so the server sorts before paginating."""
    if column in RUN_ATTRIBUTES:
        clause = f"attributes.{column}"
    else:
        prefix, _, key = column.partition(".")
        if prefix not in PREFIXES or not key:
            raise InvalidInput(
                f"Cannot sort by {column!r}: choose start_time, run_name, status or a "
                "metrics., params. or tags. column."
            )
        if "`" in key:
            raise InvalidInput(f"Cannot sort by {column!r}: MLflow cannot quote a backtick.")
        clause = f"{prefix}.`{key}`"
    return f"{clause} {'DESC' if descending else 'ASC'}"


def parse_id_list(text: str | None) -> list[str]:
    """Comma-separated IDs from a URL, in order, without blanks or repeats."""
    return list(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))


@dataclass(frozen=True)
class SelectionUpdate:
    selection: list[str]
    dropped: list[str]


def merge_page_selection(
    selection: list[str],
    page_ids: list[str],
    chosen_on_page: list[str],
    limit: int = MAX_COMPARED,
) -> SelectionUpdate:
    """The selection after a person ticked `chosen_on_page` among the runs of one page.

    Runs chosen on other pages stay, in their order; beyond `limit` the newest choices are
    dropped.
    """
    on_page, chosen = set(page_ids), set(chosen_on_page)
    kept = [run_id for run_id in selection if run_id not in on_page or run_id in chosen]
    added = [run_id for run_id in chosen_on_page if run_id not in selection]
    merged = kept + added
    return SelectionUpdate(merged[:limit], merged[limit:])


# Side-by-side comparison


@dataclass(frozen=True)
class ComparedItem:
    """One column of a comparison: a run, or a model version through its source run."""

    label: str
    run_id: str
    params: dict[str, str]
    metrics: dict[str, float]


def _side_by_side(values: Mapping[str, Mapping[str, V]], index_name: str) -> pd.DataFrame:
    """One row per key, one column per label; a key an item lacks is None."""
    keys = sorted({key for item in values.values() for key in item})
    return pd.DataFrame(
        {label: [item.get(key) for key in keys] for label, item in values.items()},
        index=pd.Index(keys, name=index_name),
    )


def _differs(frame: pd.DataFrame) -> pd.Series:
    """Rows whose values are not all the same; a missing value differs from any value."""
    filled = frame.astype(object).where(frame.notna(), None)
    return filled.apply(lambda row: len(set(row.tolist())) > 1, axis=1).astype(bool)


@dataclass(frozen=True)
class Comparison:
    items: tuple[ComparedItem, ...]
    directions: dict[str, Direction]

    @property
    def labels(self) -> list[str]:
        return [item.label for item in self.items]

    def metrics_table(self, only_differences: bool = False) -> pd.DataFrame:
        """Columns: metric, better ("higher"/"lower"), then one float column per item."""
        values = _side_by_side({i.label: i.metrics for i in self.items}, "metric")
        values = values.astype(float) if len(values) else values
        if only_differences and len(values):
            values = values[_differs(values)]
        table = values.reset_index()
        table.insert(1, "better", [self.directions[m] for m in table["metric"]])
        return table

    def params_table(self, only_differences: bool = False) -> pd.DataFrame:
        """Columns: param, then one text column per item (None where the run lacks it)."""
        values = _side_by_side({i.label: i.params for i in self.items}, "param")
        if only_differences and len(values):
            values = values[_differs(values)]
        return values.reset_index()

    def best_mask(self, metrics_table: pd.DataFrame) -> pd.DataFrame:
        """True where a cell holds its metric's best value, in the metric's direction."""
        values = metrics_table[self.labels]
        mask = pd.DataFrame(False, index=values.index, columns=values.columns)
        for row, direction in metrics_table["better"].items():
            line = values.loc[row]
            if line.notna().any():
                scores = line.astype(float).map(lambda value, d=direction: goodness(value, d))
                mask.loc[row] = scores == scores.max()
        return mask

    def best_labels(self) -> dict[str, list[str]]:
        table = self.metrics_table()
        mask = self.best_mask(table)
        return {
            metric: [label for label in self.labels if mask.loc[row, label]]
            for row, metric in table["metric"].items()
        }

    def frame(self) -> pd.DataFrame:
        """One row per item (label, run_id, params.*, metrics.*), for charts."""
        rows = []
        for item in self.items:
            row: dict[str, object] = {"label": item.label, "run_id": item.run_id}
            row.update({f"params.{k}": v for k, v in item.params.items()})
            row.update({f"metrics.{k}": v for k, v in item.metrics.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_csv(self, only_differences: bool = False) -> str:
        """The comparison as one CSV: a run_id row, then params, then metrics.

        Run names, param values and metric names come from whoever logged the runs, so
        formula-like text is quoted (`csv_safety`); metric values stay numbers.
        """
        ids = pd.DataFrame([["run", "run_id", None, *(i.run_id for i in self.items)]])
        params = self.params_table(only_differences)
        params.insert(0, "kind", "param")
        params.insert(2, "better", None)
        metrics = self.metrics_table(only_differences)
        metrics.insert(0, "kind", "metric")
        header = ["kind", "name", "better", *self.labels]
        parts = [ids, params, metrics]
        for part in parts:
            part.columns = header
        return safe_frame(pd.concat(parts, ignore_index=True)).to_csv(index=False)


def _check_count(ids: list[str], what: str) -> None:
    if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(
            f"Select between {MIN_COMPARED} and {MAX_COMPARED} {what} to compare; got {len(ids)}."
        )


def _unique_labels(names: list[str], run_ids: list[str]) -> list[str]:
    # Sweep runs often share a name; the short ID tells them apart.
    return [
        name if names.count(name) == 1 else f"{name} ({run_id[:8]})"
        for name, run_id in zip(names, run_ids, strict=True)
    ]


def _comparison(
    labels: list[str], runs: list[RunDetail], overrides: Mapping[str, Direction] | None
) -> Comparison:
    items = tuple(
        ComparedItem(label, run.run_id, dict(run.params), dict(run.metrics))
        for label, run in zip(labels, runs, strict=True)
    )
    metrics = {key for item in items for key in item.metrics}
    return Comparison(items, {m: metric_direction(m, dict(overrides or {})) for m in metrics})


def compare_runs(
    registry: Registry,
    run_ids: list[str],
    direction_overrides: Mapping[str, Direction] | None = None,
) -> Comparison:
    """2 to 10 runs side by side; `direction_overrides` is the policy's [metric_direction]."""
    ids = list(dict.fromkeys(run_ids))
    _check_count(ids, "runs")
    runs = [registry.get_run(run_id) for run_id in ids]
    labels = _unique_labels([r.run_name or r.run_id[:8] for r in runs], ids)
    return _comparison(labels, runs, direction_overrides)


def _source_run(registry: Registry, version: VersionInfo) -> RunDetail:
    if not version.run_id:
        raise InvalidInput(
            f"Version {version.version} of {version.model_name} has no source run, so it has "
            "no params or metrics to compare."
        )
    return registry.get_run(version.run_id)


def compare_versions(
    registry: Registry,
    model: str,
    versions: list[str],
    direction_overrides: Mapping[str, Direction] | None = None,
) -> Comparison:
    """2 to 10 versions of one model side by side, through their source runs."""
    numbers = list(dict.fromkeys(str(v) for v in versions))
    _check_count(numbers, "versions")
    infos = [registry.get_version(model, number) for number in numbers]
    runs = [_source_run(registry, info) for info in infos]
    return _comparison([f"v{n}" for n in numbers], runs, direction_overrides)


def metric_histories(registry: Registry, comparison: Comparison, metric: str) -> pd.DataFrame:
    """The metric's values over steps for every compared run: label, step, value."""
    frames = [
        registry.metric_history(item.run_id, metric).assign(label=item.label)
        for item in comparison.items
        if metric in item.metrics
    ]
    if not frames:
        return pd.DataFrame(columns=["label", "step", "value"])
    return pd.concat(frames, ignore_index=True)[["label", "step", "value"]]


# Candidate against champion

DELTA_COLUMNS = [
    "metric",
    "candidate",
    "champion",
    "delta",
    "direction",
    "regression",
    "tolerance",
    "minimum",
    "within_tolerance",
    "meets_minimum",
    "passes",
]


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _check(applies: bool, ok: bool) -> bool | None:
    return ok if applies else None


def metric_deltas(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float],
    policy: ModelPolicy,
    direction_overrides: Mapping[str, Direction] | None = None,
) -> pd.DataFrame:
    """Every metric of either side with its change and the policy's verdict on it.

    Columns: metric, candidate, champion, delta (candidate - champion), direction,
    regression (how much worse the candidate is, in the metric's units; <= 0 is no worse),
    tolerance (policy `max_regression`), minimum (policy `min_metrics`: a floor for
    higher-is-better metrics, a ceiling for lower-is-better ones), within_tolerance,
    meets_minimum, passes. The three verdicts are True/False, or <NA> where the policy does
    not gate the metric; a regression cannot be judged without a champion value (<NA>), and
    a gated metric the candidate lacks fails. Gated metrics come first, present or not.
    """
    overrides = dict(direction_overrides or {})
    rows = []
    gated = set(policy.min_metrics) | set(policy.max_regression)
    for metric in sorted(set(candidate_metrics) | set(champion_metrics) | gated):
        candidate = _nan_if_none(candidate_metrics.get(metric))
        champion = _nan_if_none(champion_metrics.get(metric))
        direction = metric_direction(metric, overrides)
        regression = goodness(champion, direction) - goodness(candidate, direction)
        tolerance = policy.max_regression.get(metric)
        minimum = policy.min_metrics.get(metric)
        has_candidate = not math.isnan(candidate)
        within = _check(
            tolerance is not None and not math.isnan(champion),
            has_candidate and regression <= (tolerance or 0.0) + TOLERANCE_SLACK,
        )
        meets = _check(
            minimum is not None,
            has_candidate
            and goodness(candidate, direction) - goodness(minimum or 0.0, direction)
            >= -TOLERANCE_SLACK,
        )
        verdicts = [v for v in (within, meets) if v is not None]
        rows.append(
            {
                "metric": metric,
                "candidate": candidate,
                "champion": champion,
                "delta": candidate - champion,
                "direction": direction,
                "regression": regression,
                "tolerance": _nan_if_none(tolerance),
                "minimum": _nan_if_none(minimum),
                "within_tolerance": within,
                "meets_minimum": meets,
                "passes": all(verdicts) if verdicts else None,
            }
        )
    frame = pd.DataFrame(rows, columns=DELTA_COLUMNS)
    for column in ("within_tolerance", "meets_minimum", "passes"):
        frame[column] = frame[column].astype("boolean")
    first = frame["metric"].isin(gated)
    return pd.concat([frame[first], frame[~first]], ignore_index=True)


def differing_params(
    candidate_params: Mapping[str, str], champion_params: Mapping[str, str]
) -> pd.DataFrame:
    """Params whose value differs (or exists on one side only): param, candidate, champion."""
    values = _side_by_side({"candidate": candidate_params, "champion": champion_params}, "param")
    if len(values):
        values = values[_differs(values)]
    return values.reset_index()


@dataclass(frozen=True)
class ChampionComparison:
    model: str
    alias: str
    candidate: VersionInfo
    champion: VersionInfo | None
    deltas: pd.DataFrame
    params: pd.DataFrame
    policy_source: str

    @property
    def passes(self) -> bool | None:
        """Whether every gated metric passes; None when the policy gates none of them."""
        verdicts = self.deltas["passes"].dropna()
        return bool(verdicts.all()) if len(verdicts) else None


def candidate_vs_champion(
    registry: Registry, model: str, version: str, policy: Policy
) -> ChampionComparison:
    """A version's metrics next to those of the version the policy serves (none without one)."""
    model_policy = policy.for_model(model)
    candidate = registry.get_version(model, version)
    champion = registry.serving_version(policy, model)
    candidate_run = _source_run(registry, candidate)
    champion_run = _source_run(registry, champion) if champion else None
    champion_metrics = champion_run.metrics if champion_run else {}
    return ChampionComparison(
        model=model,
        alias=policy.serving_target(model) or "",
        candidate=candidate,
        champion=champion,
        deltas=metric_deltas(
            candidate_run.metrics, champion_metrics, model_policy, policy.metric_direction
        ),
        params=differing_params(candidate_run.params, champion_run.params if champion_run else {}),
        policy_source=policy.source,
    )


# The models page: registered models, a model's versions, lineage of one version


def _pairs(mapping: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))


MODEL_COLUMNS = [
    "model",
    "served from",
    "champion",
    "champion_changed_at",
    "aliases",
    "stages",
    "versions",
    "last_updated",
    "tags",
    "description",
]


# A table cell shows the start of a description: MLflow takes descriptions of any size,
# and a megabyte in every visit to a page freezes the browser.
DESCRIPTION_PREVIEW_CHARS = 300


def description_preview(text: str | None, limit: int = DESCRIPTION_PREVIEW_CHARS) -> str | None:
    """The first `limit` characters of a description, marked when it goes on."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}… ({len(text):,} characters)"


def models_table(models: list[ModelSummary]) -> pd.DataFrame:
    """One row per registered model; descriptions are previews, plain text for the page."""
    return pd.DataFrame(
        [
            {
                "model": m.name,
                "served from": describe_target(m.target) if m.target else "no policy",
                "champion": f"v{m.champion.version}" if m.champion else None,
                "champion_changed_at": m.champion_changed_at,
                "aliases": _pairs(m.aliases),
                "stages": stages_text(m.stages),
                "versions": m.n_versions,
                "last_updated": m.last_updated,
                # The panel's own bookkeeping tags are the column before, not tags to read.
                "tags": _pairs(
                    {k: v for k, v in m.tags.items() if not k.startswith(ALIAS_CHANGED_TAG)}
                ),
                "description": description_preview(m.description),
            }
            for m in models
        ],
        columns=MODEL_COLUMNS,
    )


def key_metrics(policy: Policy, model: str) -> list[str]:
    """The metrics the policy cares about: its key metric, then the gated ones; without a
    stated key metric, the well-known ones (a table shows those some version logs)."""
    model_policy = policy.for_model(model)
    stated = policy.key_metric(model)
    gated = (
        [*model_policy.min_metrics, *model_policy.max_regression] if policy.covers(model) else []
    )
    first = [stated] if stated and model_policy.states_key_metric else list(KEY_METRIC_PREFERENCE)
    return list(dict.fromkeys([*first, *gated]))


def versions_table(registry: Registry, model: str, metrics: list[str]) -> pd.DataFrame:
    """Every version, newest first, with its source run and that run's `metrics`."""
    rows = []
    for version in registry.list_versions(model):
        run_metrics = registry.get_run(version.run_id).metrics if version.run_id else {}
        rows.append(
            {
                "version": version.version,
                "aliases": ", ".join(version.aliases),
                "stage": version.stage,
                "created_at": version.created_at,
                "author": version.author,
                "status": version.status,
                "run_id": version.run_id,
                **{metric: run_metrics.get(metric) for metric in metrics},
                "tags": _pairs(version.tags),
                "description": description_preview(version.description),
            }
        )
    columns = ["version", "aliases", "stage", "created_at", "author", "status", "run_id"]
    table = pd.DataFrame(rows, columns=[*columns, *metrics, "tags", "description"])
    # A metric no version logged is a column of blanks: left out.
    return table.drop(columns=[m for m in metrics if table[m].isna().all()])

"""Column profiles, an Evidently data summary, data freshness and distribution figures.

`profile_frame` computes the same statistics Evidently's DataSummaryPreset reports (pandas
semantics: sample standard deviation, linearly interpolated quantiles, category shares
over all rows including missing ones), so the panel's tables and the embedded Evidently
report never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mlops_core.errors import InvalidInput
from mlops_core.evidence.report_safety import harden_report

if TYPE_CHECKING:
    from evidently import DataDefinition

ColumnType = Literal["numeric", "categorical", "datetime", "boolean"]
PROFILE_COLUMNS = [
    "column",
    "type",
    "count",
    "missing_count",
    "missing_share",
    "distinct_count",
    "min",
    "max",
    "mean",
    "std",
    "q25",
    "q50",
    "q75",
    "top_categories",
]
QUANTILES = {"q25": 0.25, "q50": 0.5, "q75": 0.75}
TOP_CATEGORIES = 10
DEFAULT_SUMMARY_SAMPLE = 5000
REFERENCE_COLOR = "#636EFA"
CURRENT_COLOR = "#EF553B"
OTHER = "(other)"
MISSING = "(missing)"


def column_type(series: pd.Series) -> ColumnType:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    return "categorical"


# Profiles


def profile_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row of statistics per column, in the frame's column order.

    `count` is the number of non-missing values; `missing_share` is over all rows.
    """
    return pd.DataFrame([_profile_column(frame[c]) for c in frame.columns], columns=PROFILE_COLUMNS)


def compare_profiles(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Reference and current statistics side by side (`<stat>_ref`, `<stat>_cur`).

    Columns present on one side only keep empty values on the other side.
    """
    ref = profile_frame(reference).set_index("column")
    cur = profile_frame(current).set_index("column")
    order = list(ref.index) + [c for c in cur.index if c not in ref.index]
    joined = ref.join(cur, how="outer", lsuffix="_ref", rsuffix="_cur").reindex(order)
    stats = [c for c in PROFILE_COLUMNS if c != "column"]
    paired = [f"{stat}{side}" for stat in stats for side in ("_ref", "_cur")]
    return joined[paired].rename_axis("column").reset_index()


def _profile_column(series: pd.Series) -> dict[str, Any]:
    kind = column_type(series)
    values = series.dropna()
    missing = len(series) - len(values)
    row: dict[str, Any] = {
        "column": str(series.name),
        "type": kind,
        "count": len(values),
        "missing_count": missing,
        "missing_share": missing / len(series) if len(series) else 0.0,
        "distinct_count": int(values.nunique()),
    }
    if kind == "numeric" and len(values):
        row |= {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
            "std": float(values.std()),
            **{name: float(values.quantile(q)) for name, q in QUANTILES.items()},
        }
    elif kind == "datetime" and len(values):
        row |= {"min": values.min().isoformat(), "max": values.max().isoformat()}
    elif kind == "boolean" and len(values):
        row["mean"] = float(values.astype(bool).mean())
    if kind in ("categorical", "boolean"):
        row["top_categories"] = top_categories(series)
    return row


def top_categories(series: pd.Series, limit: int = TOP_CATEGORIES) -> list[tuple[Any, float]]:
    """The most frequent values with their share of all rows (missing rows included)."""
    if series.empty:
        return []
    counts = series.value_counts(dropna=True).head(limit)
    return [(_plain(value), count / len(series)) for value, count in counts.items()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# Evidently


def evidently_summary(
    frame: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    sample_size: int = DEFAULT_SUMMARY_SAMPLE,
    seed: int = 0,
    include_html: bool = True,
) -> dict[str, Any]:
    """Run Evidently's DataSummaryPreset on a sample of `frame` (and of `reference`).

    Returns `{"engine", "sample_rows", "dataset", "columns", "reference_dataset",
    "reference_columns", "html"}`; per-column entries hold count, missing_count,
    missing_share, min, max, mean, std, q25, q50, q75 or top_categories as Evidently
    computed them.
    """
    if frame.empty or (reference is not None and reference.empty):
        raise InvalidInput("Evidently needs at least one row of data on each side.")
    # Imported here: Evidently takes seconds to import, and the profile pages need it only
    # when someone asks for its report.
    from evidently import Dataset, Report
    from evidently.presets import DataSummaryPreset

    current = _sample(frame, sample_size, seed)
    if reference is not None:
        shared = [c for c in frame.columns if c in reference.columns]
        reference = _sample(reference[shared], sample_size, seed)
        current = current[shared]
    definition = _data_definition(current)
    snapshot = Report([DataSummaryPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        None if reference is None else Dataset.from_pandas(reference, data_definition=definition),
    )
    results = snapshot.dict()["metrics"]
    summary: dict[str, Any] = {
        "engine": f"evidently {version('evidently')} DataSummaryPreset",
        "sample_rows": len(current),
        **_collect(results, lambda metric: metric["value"]),
    }
    if reference is not None:
        reference_values = _collect(
            results,
            lambda metric: snapshot.context.get_reference_metric_result(metric["id"]).to_dict()[
                "value"
            ],
        )
        summary["reference_dataset"] = reference_values["dataset"]
        summary["reference_columns"] = reference_values["columns"]
        summary["reference_sample_rows"] = len(reference)
    if include_html:
        summary["html"] = harden_report(snapshot.get_html_str(as_iframe=False))
    return summary


def _sample(frame: pd.DataFrame, sample_size: int, seed: int) -> pd.DataFrame:
    if len(frame) <= sample_size:
        return frame.reset_index(drop=True)
    return frame.sample(n=sample_size, random_state=seed).sort_index().reset_index(drop=True)


def _data_definition(frame: pd.DataFrame) -> DataDefinition:
    # Declared explicitly so Evidently classifies columns exactly as `profile_frame` does.
    from evidently import DataDefinition

    kinds = {c: column_type(frame[c]) for c in frame.columns}
    return DataDefinition(
        numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
        categorical_columns=[c for c, k in kinds.items() if k in ("categorical", "boolean")],
        datetime_columns=[c for c, k in kinds.items() if k == "datetime"],
    )


DATASET_METRICS = {
    "RowCount": "row_count",
    "DuplicatedRowCount": "duplicated_rows",
    "DuplicatedColumnsCount": "duplicated_columns",
    "AlmostDuplicatedColumnsCount": "almost_duplicated_columns",
    "AlmostConstantColumnsCount": "almost_constant_columns",
    "ConstantColumnsCount": "constant_columns",
    "EmptyRowsCount": "empty_rows",
    "EmptyColumnsCount": "empty_columns",
}
COLUMN_METRICS = {"MinValue": "min", "MaxValue": "max", "MeanValue": "mean", "StdValue": "std"}


def _collect(metrics: list[dict], value_of: Callable[[dict], Any]) -> dict[str, dict]:
    """Evidently's metric list regrouped as {"dataset": {...}, "columns": {name: {...}}}."""
    dataset: dict[str, Any] = {}
    columns: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        value = value_of(metric)
        if "column" not in config:
            if kind == "ColumnCount" and config.get("column_type") is None:
                dataset["column_count"] = int(value)
            elif kind == "DatasetMissingValueCount":
                dataset["missing_values"] = int(value["count"])
                dataset["missing_share"] = _number(value["share"])
            elif kind in DATASET_METRICS:
                dataset[DATASET_METRICS[kind]] = int(value)
            continue
        entry = columns.setdefault(config["column"], {})
        if kind == "MissingValueCount":
            entry["missing_count"] = int(value["count"])
            entry["missing_share"] = _number(value["share"])
        elif kind in COLUMN_METRICS:
            entry[COLUMN_METRICS[kind]] = _number(value)
        elif kind == "QuantileValue":
            entry[f"q{round(config['quantile'] * 100)}"] = _number(value)
        elif kind == "UniqueValueCount":
            shares = {k: v for k, v in value["shares"].items() if k is not None}
            ranked = sorted(shares.items(), key=lambda item: -item[1])[:TOP_CATEGORIES]
            entry["top_categories"] = [(_plain(k), _number(v)) for k, v in ranked]
    for entry in columns.values():
        if "missing_count" in entry:
            entry["count"] = dataset["row_count"] - entry["missing_count"]
    return {"dataset": dataset, "columns": columns}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


# Freshness


@dataclass(frozen=True)
class FreshnessResult:
    newest: datetime | None
    age: timedelta | None
    max_age: timedelta
    fresh: bool
    message: str


def freshness(
    frame_or_newest_timestamp: pd.DataFrame | datetime | None,
    max_age: timedelta,
    now: datetime | None = None,
    timestamp_column: str = "timestamp",
) -> FreshnessResult:
    """Is the newest row at most `max_age` old? Timestamps are taken as naive UTC."""
    newest = _newest(frame_or_newest_timestamp, timestamp_column)
    if newest is None:
        return FreshnessResult(
            None, None, max_age, False, "No data: there are no timestamped rows."
        )
    age = _naive_utc(now or datetime.now(UTC)) - newest
    limit = f"allowed age {_duration(max_age)}"
    if age < timedelta(0):
        message = f"Newest row is {_duration(-age)} in the future; check the clocks ({limit})."
    elif age <= max_age:
        message = f"Fresh: newest row is {_duration(age)} old ({limit})."
    else:
        message = f"Stale: newest row is {_duration(age)} old ({limit})."
    return FreshnessResult(newest, age, max_age, age <= max_age, message)


def _newest(source: pd.DataFrame | datetime | None, timestamp_column: str) -> datetime | None:
    if isinstance(source, pd.DataFrame):
        if timestamp_column not in source.columns:
            raise InvalidInput(f"The data has no column {timestamp_column!r} to judge freshness.")
        source = pd.to_datetime(source[timestamp_column], utc=True).max()
    if source is None or pd.isna(source):
        return None
    return _naive_utc(pd.Timestamp(source).to_pydatetime())


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _duration(delta: timedelta) -> str:
    if delta < timedelta(minutes=1):
        return "less than a minute"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    if not days and minutes:
        parts.append(f"{minutes} min")
    return " ".join(p for p in parts if p)


# Figures


def column_distribution_figure(
    reference: pd.DataFrame, current: pd.DataFrame, column: str, bins: int = 30
) -> go.Figure:
    """Reference vs current distribution of one column, as shares of each side's rows.

    Numeric and datetime columns get histograms over shared bins; other columns get bars
    for the most frequent values (the rest lumped into "(other)").
    """
    for side, frame in (("reference", reference), ("current", current)):
        if column not in frame.columns:
            raise InvalidInput(f"The {side} data has no column {column!r}.")
    ref, cur = reference[column], current[column]
    if column_type(ref) == column_type(cur) and column_type(ref) in ("numeric", "datetime"):
        figure = _histogram_figure(ref, cur, bins)
    else:
        figure = _category_figure(ref, cur)
    figure.update_layout(
        title=f"{column}: reference vs current",
        xaxis_title=column,
        yaxis_title="share of rows",
        yaxis_tickformat=".0%",
        legend_title_text="data",
    )
    return figure


def _histogram_figure(ref: pd.Series, cur: pd.Series, bins: int) -> go.Figure:
    is_time = pd.api.types.is_datetime64_any_dtype(ref.dtype)
    ref_values, cur_values = (_as_numbers(s.dropna(), is_time) for s in (ref, cur))
    figure = go.Figure()
    combined = np.concatenate([ref_values, cur_values])
    if not len(combined):
        figure.add_annotation(text="No values on either side", showarrow=False)
        return figure
    edges = np.histogram_bin_edges(combined, bins=bins)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    x = pd.to_datetime(centers.astype("int64")) if is_time else centers
    for name, values, total, color in (
        ("reference", ref_values, len(ref), REFERENCE_COLOR),
        ("current", cur_values, len(cur), CURRENT_COLOR),
    ):
        counts, _ = np.histogram(values, bins=edges)
        figure.add_bar(
            x=x,
            y=counts / total if total else counts,
            width=widths / 1e6 if is_time else widths,
            name=name,
            marker_color=color,
            opacity=0.6,
        )
    figure.update_layout(barmode="overlay", bargap=0)
    return figure


def _as_numbers(values: pd.Series, is_time: bool) -> np.ndarray:
    if is_time:
        return pd.to_datetime(values).astype("int64").to_numpy(dtype=float)
    return values.to_numpy(dtype=float)


def _category_figure(ref: pd.Series, cur: pd.Series) -> go.Figure:
    ref_labels, cur_labels = _labels(ref), _labels(cur)
    combined = pd.concat([ref_labels, cur_labels]).value_counts()
    top = list(combined.index[:TOP_CATEGORIES])
    order = top + ([OTHER] if len(combined) > TOP_CATEGORIES else [])
    figure = go.Figure()
    for name, series, color in (
        ("reference", ref_labels, REFERENCE_COLOR),
        ("current", cur_labels, CURRENT_COLOR),
    ):
        shares = series.where(series.isin(top), OTHER).value_counts(normalize=True)
        figure.add_bar(
            x=order, y=[float(shares.get(v, 0.0)) for v in order], name=name, marker_color=color
        )
    figure.update_layout(barmode="group")
    return figure


def _labels(series: pd.Series) -> pd.Series:
    return series.astype("object").where(series.notna(), MISSING).astype(str)

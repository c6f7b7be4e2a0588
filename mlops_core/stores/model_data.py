"""A model's data: the reference and evaluation sets of a version (where the policy's
`data` section puts them, else where MLflow recorded them: `stores.data_discovery`) and
windows of current data (a SQL table or query with a timestamp column, or CSV/Parquet files).

Gates, the drift and profile pages, the drift CLI and the monitoring history all load
through here, so they judge the very same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from mlops_core.config import Settings
from mlops_core.errors import ConfigError, InvalidInput, NotFound
from mlops_core.policy import DataSources, DriftPolicy, ModelPolicy
from mlops_core.stores.data_discovery import find_data
from mlops_core.stores.registry import Registry, VersionInfo
from mlops_core.stores.sources import (
    LoadedData,
    as_loaded,
    load_file,
    load_sql_window,
    sql_time_bounds,
    weekly_windows,
)


def load_reference(
    registry: Registry, policy: ModelPolicy, version: VersionInfo, sample_size: int | None = None
) -> LoadedData:
    """The version's reference set, from the first source that has it (`find_data`)."""
    return find_data(registry, policy, version, "reference", sample_size).loaded


def current_bounds(settings: Settings, data: DataSources) -> tuple[datetime, datetime] | None:
    """Oldest and newest timestamp of the current data (naive UTC), None when it has no rows."""
    _require_current(data)
    if data.current_table or data.current_query:
        return sql_time_bounds(
            data.resolved_current_url(settings.inference_db_url),
            data.current_table,
            data.current_query,
            data.timestamp_column,
        )
    stamps = _timestamps(_current_files(data), data).dropna()
    if stamps.empty:
        return None
    return stamps.min().to_pydatetime(), stamps.max().to_pydatetime()


def load_current(
    settings: Settings,
    data: DataSources,
    start: datetime | None = None,
    end: datetime | None = None,
    sample_size: int | None = None,
    columns_if_present: Sequence[str] | None = None,
) -> LoadedData:
    """Current rows with ``start <= timestamp < end`` (either bound may be open); only
    `columns_if_present` (those the source has) when given, which spares reading every
    feature of a large inference log."""
    _require_current(data)
    if data.current_table or data.current_query:
        return load_sql_window(
            data.resolved_current_url(settings.inference_db_url),
            table=data.current_table,
            query=data.current_query,
            timestamp_column=data.timestamp_column,
            start=start,
            end=end,
            sample_size=sample_size,
            columns_if_present=columns_if_present,
        )
    frame = _current_files(data)
    if columns_if_present:
        frame = frame[[c for c in frame.columns if c in set(columns_if_present)]]
    if start is not None or end is not None:
        stamps = _timestamps(frame, data)
        keep = pd.Series(True, index=frame.index)
        if start is not None:
            keep &= stamps >= pd.Timestamp(start)
        if end is not None:
            keep &= stamps < pd.Timestamp(end)
        frame = frame[keep]
    return as_loaded(frame, f"files {', '.join(data.current_files)}", sample_size)


def latest_window(settings: Settings, policy: ModelPolicy) -> tuple[datetime, datetime]:
    """The latest `window_days` of current data, ending at (and including) its newest row."""
    bounds = current_bounds(settings, policy.data)
    if bounds is None:
        raise NotFound("The current data source has no rows yet.")
    days = (policy.drift or DriftPolicy()).window_days
    # Windows are half-open, so the end lies just past the newest row.
    return bounds[1] - timedelta(days=days), bounds[1] + timedelta(microseconds=1)


def load_latest_current(
    settings: Settings, policy: ModelPolicy, sample_size: int | None = None
) -> LoadedData:
    start, end = latest_window(settings, policy)
    return load_current(settings, policy.data, start, end, sample_size)


@dataclass(frozen=True)
class WindowChoice:
    """A window of current data a person can pick, labelled for a select box."""

    label: str
    start: datetime
    end: datetime


def window_choices(settings: Settings, policy: ModelPolicy) -> list[WindowChoice]:
    """The latest `window_days`, then each calendar week of the current data, newest first."""
    bounds = current_bounds(settings, policy.data)
    if bounds is None:
        return []
    days = (policy.drift or DriftPolicy()).window_days
    latest = WindowChoice(f"Latest {days} days", *latest_window(settings, policy))
    weeks = [
        WindowChoice(f"Week of {start:%Y-%m-%d}", start, end)
        for start, end in reversed(weekly_windows(*bounds))
    ]
    return [latest, *weeks]


def drift_columns(policy: ModelPolicy, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The policy's drift columns, else every column both sides share but the bookkeeping."""
    data = policy.data
    drift = policy.drift or DriftPolicy()
    if drift.columns:
        return list(drift.columns)
    ignored = set(data.ignore_columns) | {data.timestamp_column, data.label_column}
    columns = [c for c in reference.columns if c in current.columns and c not in ignored]
    if not columns:
        raise InvalidInput("The reference and the current data have no column in common.")
    return columns


def _require_current(data: DataSources) -> None:
    if not data.has_current:
        raise ConfigError(
            "For this model no current data source is configured "
            "(policy data.current_table, current_query or current_files)."
        )


def _current_files(data: DataSources) -> pd.DataFrame:
    return pd.concat([load_file(path).frame for path in data.current_files], ignore_index=True)


def _timestamps(frame: pd.DataFrame, data: DataSources) -> pd.Series:
    if data.timestamp_column not in frame:
        raise InvalidInput(f"The current data files have no column {data.timestamp_column!r}.")
    try:
        stamps = pd.to_datetime(frame[data.timestamp_column], utc=True, format="ISO8601")
    except (ValueError, TypeError):
        raise InvalidInput(
            f"Column {data.timestamp_column!r} of the current data files holds values that "
            "are not timestamps."
        ) from None
    return stamps.dt.tz_convert(None)

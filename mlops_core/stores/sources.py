"""Where monitored data comes from: CSV/Parquet files, SQL inference tables, run artifacts.

Every loader returns `LoadedData`, which remembers how many rows the source held before
sampling, so each result on a page can say "sample of N out of M rows". SQL sources are
filtered, counted and sampled inside the database, so a large inference table is never
loaded in full.
"""

from __future__ import annotations

import csv
import io
import random
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow
import pyarrow.parquet
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from requests.exceptions import RequestException
from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    Table,
    column,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, NoSuchTableError
from sqlalchemy.sql import ColumnElement, Executable, FromClause, Select

from mlops_core.config import DataLimits, data_limits, query_timeout_seconds
from mlops_core.errors import InvalidInput, NotFound, QueryTimeout, RegistryUnavailable
from mlops_core.stores.registry import mlflow_error_message

DEFAULT_UPLOAD_MAX_BYTES = 200 * 1024 * 1024
PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
SNIFF_BYTES = 64 * 1024

# Sampling key: row number r -> (r * A + B) mod P. P is prime and larger than any row
# count we sample from, so the key is a permutation of the row numbers; the rows with the
# smallest keys are an evenly spread, seed-dependent sample that SQLite and PostgreSQL
# compute identically with plain integer arithmetic.
SAMPLE_MODULUS = 2_147_483_647
ROW_NUMBER = "_mlops_row_number"


@dataclass(frozen=True, eq=False)
class LoadedData:
    """A frame of at most `sample_size` rows out of `total_rows` in the source."""

    frame: pd.DataFrame
    description: str
    total_rows: int
    sample_size: int | None

    @property
    def is_sample(self) -> bool:
        return len(self.frame) < self.total_rows

    @property
    def caption(self) -> str:
        if self.is_sample:
            return f"sample of {len(self.frame):,} out of {self.total_rows:,} rows"
        return f"all {self.total_rows:,} rows"


# Files


def read_table_file(
    path_or_buffer: str | Path | IO[bytes],
    filename: str,
    max_bytes: int | None = None,
    limits: DataLimits | None = None,
) -> pd.DataFrame:
    """Read a CSV or Parquet file from disk or from an upload (a binary buffer).

    Uploads are capped at `max_bytes` (default 200 MB); files on disk only when
    `max_bytes` is given. The format comes from the extension, checked against the content.
    What the file expands to is held to `limits` (default: MLOPS_MAX_DATA_ROWS / _MB):
    Parquet from its metadata before anything is decoded, CSV by reading one row too many.
    """
    limits = limits or data_limits()
    if isinstance(path_or_buffer, str | Path):
        path = Path(path_or_buffer)
        if not path.is_file():
            raise NotFound(f"The file {filename} does not exist.")
        _check_size(filename, path.stat().st_size, max_bytes)
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        source: Path | io.BytesIO = path
    else:
        limit = DEFAULT_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        if hasattr(path_or_buffer, "seek"):
            path_or_buffer.seek(0)
        data = path_or_buffer.read(limit + 1)
        _check_size(filename, len(data), limit)
        head = data[:SNIFF_BYTES]
        source = io.BytesIO(data)
    if not head:
        raise InvalidInput(f"{filename} is empty.")
    if _file_kind(filename, head) == "parquet":
        frame = _read_parquet(source, filename, limits)
    else:
        frame = _read_csv(source, filename, _csv_delimiter(head), limits)
    if frame.empty:
        raise InvalidInput(f"{filename} has no data rows.")
    return frame


def load_file(path: str | Path, sample_size: int | None = None, seed: int = 0) -> LoadedData:
    name = Path(path).name
    return as_loaded(read_table_file(path, name), f"file {name}", sample_size, seed)


def as_loaded(
    frame: pd.DataFrame, description: str, sample_size: int | None = None, seed: int = 0
) -> LoadedData:
    """Wrap an in-memory frame (an upload, say), sampling it down to `sample_size` rows."""
    _check_sample_size(sample_size)
    total = len(frame)
    if sample_size is not None and total > sample_size:
        # Keep the source's row order: for time-ordered data the sample stays time-ordered.
        frame = frame.sample(n=sample_size, random_state=seed).sort_index()
    return LoadedData(frame.reset_index(drop=True), description, total, sample_size)


def _check_size(filename: str, size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise InvalidInput(
            f"{filename} is larger than the {_megabytes(limit)} limit for data files."
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _file_kind(filename: str, head: bytes) -> str:
    suffix = Path(filename).suffix.lower()
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if suffix in PARQUET_SUFFIXES:
        raise InvalidInput(f"{filename} is named like a Parquet file but is not one.")
    if b"\x00" in head:
        raise InvalidInput(f"{filename} is not a CSV or Parquet file (it holds binary data).")
    if suffix not in CSV_SUFFIXES and _csv_delimiter(head) is None:
        raise InvalidInput(
            f"{filename} is not a CSV or Parquet file; upload a .csv or .parquet table."
        )
    return "csv"


def _csv_delimiter(head: bytes) -> str | None:
    # Only the first lines are sniffed; a line cut off at the end would confuse the sniffer.
    sample = head.decode("utf-8", errors="replace").rsplit("\n", 1)[0] if b"\n" in head else ""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None


def _too_large(filename: str, what: str, limits: DataLimits) -> InvalidInput:
    return InvalidInput(
        f"{filename} holds {what}, over the limit of {limits.max_rows:,} rows and "
        f"{limits.max_megabytes:,} MB in memory (MLOPS_MAX_DATA_ROWS, MLOPS_MAX_DATA_MB); "
        "load a sample or a shorter window."
    )


def _read_csv(
    source: Path | io.BytesIO, filename: str, delimiter: str | None, limits: DataLimits
) -> pd.DataFrame:
    try:
        frame = pd.read_csv(source, sep=delimiter or ",", nrows=limits.max_rows + 1)
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"{filename} has no columns or rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{filename} is not a readable CSV file: {_first_line(exc)}") from None
    if len(frame) > limits.max_rows:
        raise _too_large(filename, f"more than {limits.max_rows:,} rows", limits)
    return frame


def parquet_footprint(source: Path | io.BytesIO) -> tuple[int, int]:
    """(rows, estimated bytes in memory) of a Parquet file, from its metadata alone.

    Every value takes at least a machine word once loaded (a number, or a pointer to a
    string), and variable-length data at least its uncompressed size on top.
    """
    metadata = pyarrow.parquet.ParquetFile(source).metadata
    uncompressed = sum(
        metadata.row_group(g).column(c).total_uncompressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    return metadata.num_rows, metadata.num_rows * metadata.num_columns * 8 + uncompressed


def _read_parquet(source: Path | io.BytesIO, filename: str, limits: DataLimits) -> pd.DataFrame:
    try:
        rows, estimated = parquet_footprint(source)
        if rows > limits.max_rows or estimated > limits.max_megabytes * 1024 * 1024:
            raise _too_large(filename, f"{rows:,} rows (about {_megabytes(estimated)})", limits)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return pd.read_parquet(source)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(
            f"{filename} is not a readable Parquet file: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_sample_size(sample_size: int | None) -> None:
    if sample_size is not None and sample_size < 1:
        raise InvalidInput(f"The sample size must be at least 1, not {sample_size}.")


# SQL


@dataclass(frozen=True)
class _SqlSource:
    selectable: FromClause
    label: str

    def column(self, name: str) -> ColumnElement:
        if name not in self.selectable.c:
            known = ", ".join(self.selectable.c.keys())
            raise InvalidInput(f"{self.label} has no column {name!r}. Its columns: {known}.")
        return self.selectable.c[name]


def load_sql_window(
    url: str,
    table: str | None = None,
    query: str | None = None,
    timestamp_column: str = "timestamp",
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
    sample_size: int | None = None,
    seed: int = 0,
    columns_if_present: Sequence[str] | None = None,
) -> LoadedData:
    """Rows of a table (or of a SELECT query) with `start <= timestamp < end`.

    `columns` must all exist; `columns_if_present` are added where the source has them
    (optional log columns); with neither, every column is read.
    `filters` maps a column to a value (equality), a list of values (IN) or None (IS NULL);
    all values are bound as parameters. Counting and sampling happen in the database.
    """
    _check_sample_size(sample_size)
    with _connect(url) as connection:
        source = _resolve_source(connection, url, table, query, timestamp_column)
        has_time = timestamp_column in source.selectable.c
        present = list(source.selectable.c.keys())
        names = list(columns or [])
        names += [c for c in columns_if_present or [] if c in present and c not in names]
        names = names or present
        selected = [source.column(name) for name in names]
        conditions = _conditions(source, timestamp_column, start, end, filters or {})
        total = _execute(
            connection,
            select(func.count()).select_from(source.selectable).where(*conditions),
            source,
        ).scalar_one()
        time_order = [source.column(timestamp_column)] if has_time else []
        if sample_size is not None and total > sample_size:
            statement = _sample_statement(selected, time_order, conditions, sample_size, seed)
        else:
            statement = select(*selected).where(*conditions).order_by(*time_order, *selected)
        result = _execute(connection, statement, source)
        frame = pd.DataFrame.from_records(result.fetchall(), columns=names, coerce_float=True)
    if timestamp_column in frame:
        frame[timestamp_column] = _naive_utc_series(frame[timestamp_column])
        frame = frame.sort_values(timestamp_column, kind="stable", ignore_index=True)
    description = _describe(source.label, timestamp_column, start, end, filters)
    return LoadedData(frame, description, int(total), sample_size)


def sql_time_bounds(
    url: str,
    table: str | None = None,
    query: str | None = None,
    timestamp_column: str = "timestamp",
) -> tuple[datetime, datetime] | None:
    """Oldest and newest timestamp (naive UTC), or None when the source has no rows."""
    with _connect(url) as connection:
        source = _resolve_source(connection, url, table, query, timestamp_column)
        stamp = source.column(timestamp_column)
        row = _execute(connection, select(func.min(stamp), func.max(stamp)), source).one()
    if row[0] is None:
        return None
    oldest, newest = (_naive_utc(pd.Timestamp(value).to_pydatetime()) for value in row)
    return oldest, newest


def weekly_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Monday-to-Monday weeks [monday, next monday) covering `start` through `end`."""
    first = _naive_utc(start).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = first - timedelta(days=first.weekday())
    last = _naive_utc(end)
    windows = []
    while monday <= last:
        windows.append((monday, monday + timedelta(weeks=1)))
        monday += timedelta(weeks=1)
    return windows


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise InvalidInput(
            f"{url!r} is not a database URL (e.g. sqlite:///inference.db)."
        ) from None


def _engine(url: str) -> Engine:
    return _engine_with_timeout(url, query_timeout_seconds())


@lru_cache(maxsize=8)
def _engine_with_timeout(url: str, timeout_seconds: int) -> Engine:
    """An engine whose every statement is stopped after `timeout_seconds`: a slow query in
    the policy must end as "not evaluated", not hold a gate (and a page) for minutes."""
    parsed = _parse_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Without a connect timeout an unreachable host blocks the page for minutes.
        connect_args = {
            "connect_timeout": 10,
            "options": f"-c statement_timeout={timeout_seconds * 1000}",
        }
    try:
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except NoSuchModuleError:
        raise InvalidInput(f"No database driver is installed for {_safe_url(url)}.") from None
    if parsed.get_backend_name() == "sqlite":
        _interrupt_sqlite_after(engine, timeout_seconds)
    return engine


def _interrupt_sqlite_after(engine: Engine, timeout_seconds: int) -> None:
    """SQLite has no statement timeout: a progress handler interrupts it at the deadline."""

    @event.listens_for(engine, "before_cursor_execute")
    def start_clock(connection: Connection, *_: Any) -> None:
        deadline = time.monotonic() + timeout_seconds
        raw = connection.connection.dbapi_connection
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def _timed_out(exc: DBAPIError) -> bool:
    # PostgreSQL: query_canceled (57014) from statement_timeout; SQLite: the handler's stop.
    return getattr(exc.orig, "pgcode", None) == "57014" or str(exc.orig) == "interrupted"


def _timeout(what: str) -> QueryTimeout:
    return QueryTimeout(
        f"{what} took longer than {query_timeout_seconds()} s and was stopped "
        "(MLOPS_QUERY_TIMEOUT_SECONDS); make the query faster or the window shorter."
    )


def _safe_url(url: str) -> str:
    return _parse_url(url).render_as_string(hide_password=True)


def _connect(url: str) -> Connection:
    parsed = _parse_url(url)
    # SQLite would silently create a missing file and then report every table as unknown.
    file_name = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file_name not in (None, "", ":memory:") and not Path(file_name).is_file():
        raise InvalidInput(f"The SQLite database file {parsed.database} does not exist.")
    try:
        return _engine(url).connect()
    except DBAPIError as exc:
        raise RegistryUnavailable(
            f"Cannot reach the database at {_safe_url(url)}: {_first_line(exc.orig)}"
        ) from None


def _resolve_source(
    connection: Connection, url: str, table: str | None, query: str | None, timestamp_column: str
) -> _SqlSource:
    if (table is None) == (query is None):
        raise InvalidInput("Give either a table name or a SELECT query, not both or neither.")
    if table is not None:
        return _SqlSource(_reflect(connection, url, table), f"Table {table!r}")
    return _SqlSource(_query_subquery(connection, query, timestamp_column), "The query")


def _reflect(connection: Connection, url: str, name: str) -> Table:
    schema, _, table_name = name.rpartition(".")
    try:
        return Table(table_name, MetaData(), autoload_with=connection, schema=schema or None)
    except NoSuchTableError:
        known = ", ".join(sorted(inspect(connection).get_table_names())) or "none"
        raise InvalidInput(
            f"Table {name!r} does not exist in the database at {_safe_url(url)}. "
            f"Tables there: {known}."
        ) from None


def _query_subquery(connection: Connection, query: str, timestamp_column: str) -> FromClause:
    statement = query.strip().rstrip(";").strip()
    if not re.match(r"(?is)^(select|with)\b", statement) or ";" in statement:
        raise InvalidInput("The query must be a single SELECT statement.")
    # Colons would otherwise be taken as SQLAlchemy bind parameters (":name").
    escaped = re.sub(r"(?<![:\w\\]):(?=\w)", r"\\:", statement)
    probe = text(escaped).columns().subquery("mlops_source")
    try:
        names = list(
            connection.execute(select(literal_column("*")).select_from(probe).limit(0)).keys()
        )
    except DBAPIError as exc:
        if _timed_out(exc):
            raise _timeout("The query") from None
        raise InvalidInput(f"The query failed: {_first_line(exc.orig)}") from None
    typed = [column(n, DateTime) if n == timestamp_column else column(n) for n in names]
    return text(escaped).columns(*typed).subquery("mlops_source")


def _conditions(
    source: _SqlSource,
    timestamp_column: str,
    start: datetime | None,
    end: datetime | None,
    filters: Mapping[str, Any],
) -> list[ColumnElement[bool]]:
    conditions = []
    if start is not None:
        stamp = source.column(timestamp_column)
        conditions.append(stamp >= _as_stored(start, stamp))
    if end is not None:
        stamp = source.column(timestamp_column)
        conditions.append(stamp < _as_stored(end, stamp))
    for name, value in filters.items():
        target = source.column(name)
        if value is None:
            conditions.append(target.is_(None))
        elif isinstance(value, list | tuple | set | frozenset):
            conditions.append(target.in_(list(value)))
        else:
            conditions.append(target == value)
    return conditions


def _as_stored(moment: datetime, stamp: ColumnElement) -> datetime:
    # Naive UTC by convention; a timezone-aware column (timestamptz) gets an aware value so
    # the database does not reinterpret it in its session time zone.
    naive = _naive_utc(moment)
    return naive.replace(tzinfo=UTC) if getattr(stamp.type, "timezone", False) else naive


def _sample_statement(
    selected: list[ColumnElement],
    time_order: list[ColumnElement],
    conditions: list[ColumnElement[bool]],
    sample_size: int,
    seed: int,
) -> Select:
    # Numbering rows by every selected column makes the numbering (and so the sample)
    # deterministic: rows that tie on all of them are identical anyway.
    row_number = func.row_number().over(order_by=[*time_order, *selected]).label(ROW_NUMBER)
    numbered = select(*selected, row_number).where(*conditions).subquery("numbered")
    multiplier, offset = _sampling_key(seed)
    key = (numbered.c[ROW_NUMBER] * multiplier + offset) % SAMPLE_MODULUS
    outputs = [numbered.c[c.key] for c in selected]
    return select(*outputs).order_by(key).limit(sample_size)


def _sampling_key(seed: int) -> tuple[int, int]:
    # Nearby seeds must give unrelated keys, so both numbers come from a seeded generator.
    generator = random.Random(seed)
    return generator.randrange(1, SAMPLE_MODULUS), generator.randrange(SAMPLE_MODULUS)


def _execute(connection: Connection, statement: Executable, source: _SqlSource) -> CursorResult:
    try:
        return connection.execute(statement)
    except DBAPIError as exc:
        if _timed_out(exc):
            raise _timeout(f"Reading {source.label.lower()}") from None
        raise InvalidInput(
            f"Reading {source.label.lower()} failed: {_first_line(exc.orig)}"
        ) from None


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _naive_utc_series(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return stamps.dt.tz_convert(None)


def _describe(
    label: str,
    timestamp_column: str,
    start: datetime | None,
    end: datetime | None,
    filters: Mapping[str, Any] | None,
) -> str:
    parts = [label[0].lower() + label[1:]]
    if start is not None or end is not None:
        lower = start.isoformat(sep=" ") if start else "the beginning"
        upper = end.isoformat(sep=" ") if end else "now"
        parts.append(f"{timestamp_column} from {lower} to {upper}")
    if filters:
        parts.append(", ".join(f"{name} = {value!r}" for name, value in filters.items()))
    return "; ".join(parts)


# MLflow run artifacts


def load_run_artifact_frame(
    client: MlflowClient,
    run_id: str,
    artifact_path: str,
    sample_size: int | None = None,
    seed: int = 0,
) -> LoadedData:
    """A CSV/Parquet artifact of a run, e.g. `reference/reference.parquet`."""
    with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as folder:
        try:
            local = client.download_artifacts(run_id, artifact_path, folder)
        except (MlflowException, RequestException) as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(
                    f"Run {run_id} has no artifact {artifact_path!r} (or the run does not exist)."
                ) from None
            raise mlflow_error_message(exc, client.tracking_uri) from None
        if Path(local).is_dir():
            raise InvalidInput(
                f"Artifact {artifact_path!r} of run {run_id} is a folder, not a CSV/Parquet file."
            )
        frame = read_table_file(local, Path(artifact_path).name)
    return as_loaded(frame, f"artifact {artifact_path} of run {run_id}", sample_size, seed)

"""Data sources against real stores: SQLite and PostgreSQL tables, files, MLflow artifacts."""

from __future__ import annotations

import io
import resource
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet
import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from mlops_core.config import DataLimits, data_limits
from mlops_core.demo.scenario import fluent_tracking
from mlops_core.errors import ConfigError, InvalidInput, NotFound, QueryTimeout, RegistryUnavailable
from mlops_core.stores.sources import (
    DEFAULT_UPLOAD_MAX_BYTES,
    load_file,
    load_run_artifact_frame,
    load_sql_window,
    read_table_file,
    sql_time_bounds,
    weekly_windows,
)
from tests.pg import fresh_pg_url

FIRST_MONDAY = datetime(2026, 9, 7)
WEEKS = 3
ROWS_PER_WEEK = 200


def inference_rows() -> pd.DataFrame:
    """Three weeks of scored traffic; labels of the last week have not arrived yet."""
    rng = np.random.default_rng(7)
    n = WEEKS * ROWS_PER_WEEK
    offsets = np.sort(rng.integers(0, WEEKS * 7 * 24 * 3600, n))
    stamps = pd.Timestamp(FIRST_MONDAY) + pd.to_timedelta(offsets, unit="s")
    score = rng.random(n).round(6)
    labelled = stamps < pd.Timestamp(FIRST_MONDAY + timedelta(weeks=WEEKS - 1))
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "model": "churn-predictor",
            "model_version": "1",
            "tenure_months": rng.integers(1, 72, n),
            "monthly_charges": rng.normal(70, 20, n).round(2),
            "contract_type": rng.choice(["month-to-month", "one-year", "two-year"], n),
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "label": pd.array(np.where(labelled, rng.integers(0, 2, n), None), dtype="Int64"),
        }
    )


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return inference_rows()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, rows: pd.DataFrame
) -> Iterator[tuple[str, str]]:
    """(url, table) of an inference table seeded with `rows`, on both engines."""
    table = f"inference_test_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('inference') / 'inference.db'}"
        _seed(url, table, rows)
        yield url, table
        return
    with fresh_pg_url() as url:
        _seed(url, table, rows)
        yield url, table


def _seed(url: str, table: str, frame: pd.DataFrame) -> None:
    engine = create_engine(url)
    frame.to_sql(table, engine, index=False)
    engine.dispose()


def _week(number: int) -> tuple[datetime, datetime]:
    start = FIRST_MONDAY + timedelta(weeks=number - 1)
    return start, start + timedelta(weeks=1)


# SQL


def test_time_window_is_applied_and_counted(store: tuple[str, str], rows: pd.DataFrame) -> None:
    url, table = store
    start, end = _week(2)
    loaded = load_sql_window(url, table=table, start=start, end=end)
    expected = rows[(rows["timestamp"] >= start) & (rows["timestamp"] < end)]
    assert loaded.total_rows == len(expected) == len(loaded.frame)
    assert not loaded.is_sample
    assert loaded.caption == f"all {len(expected):,} rows"
    assert pd.api.types.is_datetime64_any_dtype(loaded.frame["timestamp"])
    assert loaded.frame["timestamp"].min() >= start
    assert loaded.frame["timestamp"].max() < end
    pd.testing.assert_series_equal(
        loaded.frame["monthly_charges"], expected["monthly_charges"].reset_index(drop=True)
    )


def test_sample_is_deterministic_and_drawn_from_the_window(
    store: tuple[str, str], rows: pd.DataFrame
) -> None:
    url, table = store
    start, _ = _week(1)
    window = dict(table=table, start=start, sample_size=50)
    first = load_sql_window(url, **window, seed=1)
    again = load_sql_window(url, **window, seed=1)
    other = load_sql_window(url, **window, seed=2)
    in_window = rows[rows["timestamp"] >= start]
    assert first.total_rows == len(in_window)
    assert len(first.frame) == 50
    assert first.caption == f"sample of 50 out of {len(in_window):,} rows"
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert not first.frame["timestamp"].equals(other.frame["timestamp"])
    assert first.frame["timestamp"].is_monotonic_increasing
    # Every sampled row is a real row, and the sample spans all three weeks.
    key = ["timestamp", "score"]
    assert len(first.frame[key].merge(rows[key])) == 50
    assert first.frame["timestamp"].dt.isocalendar().week.nunique() == WEEKS


def test_query_source_matches_the_table_with_filters(store: tuple[str, str]) -> None:
    url, table = store
    start, end = _week(1)
    columns = ["timestamp", "tenure_months", "contract_type"]
    via_table = load_sql_window(
        url, table=table, columns=columns, filters={"prediction": 1}, start=start, end=end
    )
    via_query = load_sql_window(
        url,
        query=f'SELECT timestamp, tenure_months, contract_type FROM "{table}" WHERE prediction = 1',
        start=start,
        end=end,
    )
    assert list(via_query.frame.columns) == columns
    pd.testing.assert_frame_equal(via_query.frame, via_table.frame)
    assert via_query.total_rows == via_table.total_rows > 0


def test_filters_support_lists_and_nulls(store: tuple[str, str], rows: pd.DataFrame) -> None:
    url, table = store
    unlabelled = load_sql_window(url, table=table, filters={"label": None})
    assert unlabelled.total_rows == rows["label"].isna().sum()
    contracts = load_sql_window(
        url, table=table, filters={"contract_type": ["one-year", "two-year"]}
    )
    assert contracts.total_rows == (rows["contract_type"] != "month-to-month").sum()


@pytest.mark.parametrize("value", ["x' OR '1'='1", "1; DROP TABLE {table}; --", "') OR 1=1 --"])
def test_injection_in_a_filter_value_is_only_a_value(store: tuple[str, str], value: str) -> None:
    url, table = store
    loaded = load_sql_window(url, table=table, filters={"contract_type": value.format(table=table)})
    assert loaded.total_rows == 0
    assert loaded.frame.empty
    assert load_sql_window(url, table=table, sample_size=1).total_rows == WEEKS * ROWS_PER_WEEK


def test_unknown_table_and_columns_are_named(store: tuple[str, str]) -> None:
    url, table = store
    with pytest.raises(InvalidInput, match=f"Table 'no_such_table'.*Tables there: .*{table}"):
        load_sql_window(url, table="no_such_table")
    with pytest.raises(InvalidInput, match="no column 'churn_score'.*monthly_charges"):
        load_sql_window(url, table=table, columns=["timestamp", "churn_score"])
    with pytest.raises(InvalidInput, match="no column 'segment'"):
        load_sql_window(url, table=table, filters={"segment": "a"})
    with pytest.raises(InvalidInput, match="no column 'event_time'"):
        load_sql_window(url, table=table, timestamp_column="event_time", start=FIRST_MONDAY)


def test_query_must_be_a_single_select(store: tuple[str, str]) -> None:
    url, table = store
    with pytest.raises(InvalidInput, match="single SELECT"):
        load_sql_window(url, query=f'DELETE FROM "{table}"')
    with pytest.raises(InvalidInput, match="single SELECT"):
        load_sql_window(url, query=f'SELECT 1; DROP TABLE "{table}"')
    with pytest.raises(InvalidInput, match="query failed"):
        load_sql_window(url, query="SELECT nothing FROM nowhere")
    engine = create_engine(url)
    assert table in inspect(engine).get_table_names()
    engine.dispose()


def test_time_bounds_and_weekly_windows(store: tuple[str, str], rows: pd.DataFrame) -> None:
    url, table = store
    bounds = sql_time_bounds(url, table=table)
    assert bounds == (rows["timestamp"].min(), rows["timestamp"].max())
    weeks = weekly_windows(*bounds)
    assert weeks == [_week(n) for n in range(1, WEEKS + 1)]
    assert all(start.weekday() == 0 for start, _ in weeks)
    empty = sql_time_bounds(url, query=f'SELECT timestamp FROM "{table}" WHERE 1 = 0')
    assert empty is None


def test_weekly_windows_align_to_monday() -> None:
    weeks = weekly_windows(datetime(2026, 10, 8, 15, 30), datetime(2026, 10, 12))
    assert weeks == [
        (datetime(2026, 10, 5), datetime(2026, 10, 12)),
        (datetime(2026, 10, 12), datetime(2026, 10, 19)),
    ]


def test_unreachable_database_and_missing_file_are_explained(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="Cannot reach the database at postgresql") as e:
        load_sql_window("postgresql+psycopg2://nobody:secret@127.0.0.1:1/none", table="t")
    assert "secret" not in str(e.value)
    missing = tmp_path / "missing.db"
    with pytest.raises(InvalidInput, match="missing.db does not exist"):
        load_sql_window(f"sqlite:///{missing}", table="t")
    assert not missing.exists()
    with pytest.raises(InvalidInput, match="not a database URL"):
        load_sql_window("inference.db", table="t")


# Files


def test_csv_and_parquet_files_load_with_sampling(tmp_path: Path, rows: pd.DataFrame) -> None:
    frame = rows.drop(columns="label")
    frame.to_csv(tmp_path / "current.csv", index=False)
    frame.to_parquet(tmp_path / "reference.parquet", index=False)
    from_parquet = load_file(tmp_path / "reference.parquet", sample_size=100, seed=3)
    assert (from_parquet.total_rows, len(from_parquet.frame)) == (len(frame), 100)
    assert from_parquet.description == "file reference.parquet"
    pd.testing.assert_frame_equal(
        from_parquet.frame, load_file(tmp_path / "reference.parquet", 100, seed=3).frame
    )
    from_csv = load_file(tmp_path / "current.csv")
    assert from_csv.total_rows == len(from_csv.frame) == len(frame)
    pd.testing.assert_series_equal(from_csv.frame["score"], frame["score"])


def test_uploads_are_sniffed_by_content() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    parquet = io.BytesIO(frame.to_parquet(index=False))
    pd.testing.assert_frame_equal(read_table_file(parquet, "export"), frame)
    semicolons = io.BytesIO(b"a;b\n1;x\n2;y\n")
    pd.testing.assert_frame_equal(read_table_file(semicolons, "export.csv"), frame)


@pytest.mark.parametrize(
    ("filename", "content", "problem"),
    [
        (
            "picture.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "picture.png is not a CSV or Parquet",
        ),
        (
            "notes.txt",
            b"Meeting notes\nnothing tabular here\n",
            "notes.txt is not a CSV or Parquet",
        ),
        ("broken.parquet", b"a,b\n1,2\n", "broken.parquet is named like a Parquet file"),
        (
            "truncated.parquet",
            b"PAR1\x15\x04garbage",
            "truncated.parquet is not a readable Parquet",
        ),
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "ragged.csv is not a readable CSV"),
        ("empty.csv", b"", "empty.csv is empty"),
        ("header.csv", b"a,b\n", "header.csv has no data rows"),
    ],
)
def test_files_that_are_not_tables_are_refused(
    tmp_path: Path, filename: str, content: bytes, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        read_table_file(io.BytesIO(content), filename)
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(InvalidInput, match=problem):
        load_file(tmp_path / filename)


def test_oversize_uploads_are_refused() -> None:
    assert DEFAULT_UPLOAD_MAX_BYTES == 200 * 1024 * 1024
    upload = io.BytesIO(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(InvalidInput, match="big.csv is larger than the .* MB limit"):
        read_table_file(upload, "big.csv", max_bytes=1000)
    assert len(read_table_file(upload, "big.csv", max_bytes=10_000)) == 1000


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nothing.csv does not exist"):
        load_file(tmp_path / "nothing.csv")


# MLflow run artifacts


def test_run_artifact_is_read_back_and_missing_one_is_not_found(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reference = rows.drop(columns=["timestamp", "label"])
    reference.to_parquet(tmp_path / "reference.parquet", index=False)
    with fluent_tracking(uri):
        experiment = mlflow.create_experiment("sources", artifact_location=str(tmp_path / "art"))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifact(str(tmp_path / "reference.parquet"), artifact_path="reference")
    client = MlflowClient(uri)
    run_id = run.info.run_id
    loaded = load_run_artifact_frame(client, run_id, "reference/reference.parquet")
    pd.testing.assert_frame_equal(loaded.frame, reference)
    assert loaded.description == f"artifact reference/reference.parquet of run {run_id}"
    sampled = load_run_artifact_frame(client, run_id, "reference/reference.parquet", 10)
    assert (len(sampled.frame), sampled.total_rows) == (10, len(reference))
    with pytest.raises(NotFound, match=f"{run_id} has no artifact 'evaluation/evaluation.parquet'"):
        load_run_artifact_frame(client, run_id, "evaluation/evaluation.parquet")
    with pytest.raises(InvalidInput, match="is a folder"):
        load_run_artifact_frame(client, run_id, "reference")


def test_timezone_aware_column_is_windowed_in_utc(pg_url: str) -> None:
    # A session time zone far from UTC would shift naive bounds on a timestamptz column.
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(
            text(f"ALTER DATABASE {make_url(pg_url).database} SET timezone TO 'Asia/Tokyo'")
        )
        connection.execute(text("CREATE TABLE events (timestamp timestamptz, value integer)"))
        connection.execute(
            text(
                "INSERT INTO events VALUES ('2026-10-04 23:30:00+00', 1), "
                "('2026-10-05 00:30:00+00', 2), ('2026-10-11 23:30:00+00', 3)"
            )
        )
    engine.dispose()
    week = load_sql_window(
        pg_url, table="events", start=datetime(2026, 10, 5), end=datetime(2026, 10, 12)
    )
    assert week.frame["value"].tolist() == [2, 3]
    assert week.frame["timestamp"].iloc[0] == pd.Timestamp("2026-10-05 00:30:00")
    assert sql_time_bounds(pg_url, table="events") == (
        datetime(2026, 10, 4, 23, 30),
        datetime(2026, 10, 11, 23, 30),
    )


def _constant_parquet(rows: int) -> bytes:
    """A tiny Parquet file that expands to `rows` rows: one value repeated (RLE-encoded)."""
    buffer = io.BytesIO()
    table = pyarrow.table({"x": pyarrow.repeat(1, rows)})
    pyarrow.parquet.write_table(table, buffer, compression="zstd", row_group_size=rows)
    return buffer.getvalue()


def test_a_small_parquet_file_that_expands_to_100m_rows_is_refused_before_loading() -> None:
    data = _constant_parquet(100_000_000)
    assert len(data) < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InvalidInput, match="100,000,000 rows .* over the limit of 10,000,000"):
        read_table_file(io.BytesIO(data), "bomb.parquet")
    # Refused from the metadata: the process did not grow by the 800 MB the rows would take.
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300


def test_expansion_limits_come_from_the_settings_and_cover_csv(tmp_path: Path) -> None:
    limits = data_limits({"MLOPS_MAX_DATA_ROWS": "1000", "MLOPS_MAX_DATA_MB": "1"})
    assert limits == DataLimits(max_rows=1000, max_megabytes=1)
    csv_file = tmp_path / "rows.csv"
    pd.DataFrame({"x": range(1001)}).to_csv(csv_file, index=False)
    with pytest.raises(InvalidInput, match="more than 1,000 rows"):
        read_table_file(csv_file, "rows.csv", limits=limits)
    wide = io.BytesIO()
    pd.DataFrame({f"c{i}": range(900) for i in range(200)}).to_parquet(wide)
    with pytest.raises(InvalidInput, match="MLOPS_MAX_DATA_MB"):
        read_table_file(wide, "wide.parquet", limits=limits)
    assert len(read_table_file(csv_file, "rows.csv", limits=DataLimits(max_rows=1001))) == 1001


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_limit_setting_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="MLOPS_MAX_DATA_ROWS"):
        data_limits({"MLOPS_MAX_DATA_ROWS": value})


SLOW_SQLITE = (
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000000) "
    "SELECT (SELECT max(n) FROM c) AS x, '2026-01-01' AS timestamp"
)


def test_a_slow_query_is_stopped_at_the_timeout_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_QUERY_TIMEOUT_SECONDS", "1")
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    create_engine(url).connect().close()
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s .*MLOPS_QUERY_TIMEOUT_SECONDS"):
        load_sql_window(url, query=SLOW_SQLITE)
    assert time.monotonic() - started < 10


def test_a_slow_query_is_stopped_at_the_timeout_on_postgresql(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_QUERY_TIMEOUT_SECONDS", "1")
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        load_sql_window(
            pg_url,
            query="SELECT now() AS timestamp, 1 AS x FROM pg_sleep(20)",
            timestamp_column="timestamp",
        )
    assert time.monotonic() - started < 10


def test_optional_columns_are_read_only_where_the_source_has_them(
    store: tuple[str, str],
) -> None:
    url, table = store
    loaded = load_sql_window(
        url, table=table, columns_if_present=["timestamp", "label", "no_such_column"]
    )
    assert list(loaded.frame.columns) == ["timestamp", "label"]
    assert len(loaded.frame) == loaded.total_rows > 0

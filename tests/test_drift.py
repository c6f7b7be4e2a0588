"""The fast drift engine (mlops_core.evidence.drift): known drift, sampling, the reference
cache, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_core.errors import InvalidInput
from mlops_core.evidence.drift import (
    DriftOptions,
    PreparedReference,
    clear_reference_cache,
    compute_drift,
    infer_column_type,
    prepare_reference,
    reference_cache_info,
)
from ui.charts.drift import distribution_figure

SHIFTED = {"income", "age", "channel", "plan"}
CATEGORIES = ["web", "store", "phone", "partner"]
PLANS = [0, 1, 2, 3]


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Customers; with ``shifted``, the columns in SHIFTED change and the others do not."""
    rng = np.random.default_rng(seed)
    shift = 1.0 if shifted else 0.0
    return pd.DataFrame(
        {
            "income": rng.lognormal(10 + 0.4 * shift, 0.5, rows),
            "age": rng.integers(18, 80, rows) + (8 * shift * rng.random(rows)).astype(int),
            "tenure": rng.exponential(3.0, rows),
            "score": rng.normal(600, 50, rows),
            "channel": rng.choice(
                CATEGORIES, rows, p=[0.55, 0.25, 0.1, 0.1] if shifted else [0.25] * 4
            ),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "plan": rng.choice(
                PLANS, rows, p=[0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]
            ),
            "active": rng.random(rows) < 0.7,
        }
    )


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    clear_reference_cache()


@pytest.mark.parametrize("rows", [5_000, 50_000])
def test_known_drift_is_found_exactly(rows: int) -> None:
    reference = make_frame(rows, seed=1, shifted=False)
    current = make_frame(rows, seed=2, shifted=True)
    result = compute_drift(reference, current)

    assert set(result.drifted_columns) == SHIFTED
    assert result.drift_share == len(SHIFTED) / 8
    assert result.dataset_drifted is True  # 4 of 8 meets the default share of 0.5
    assert result.engine == "fast"
    types = {column.column: column.column_type for column in result.columns}
    assert types == {
        "income": "num",
        "age": "num",
        "tenure": "num",
        "score": "num",
        "channel": "cat",
        "region": "cat",
        "plan": "cat",  # integers with few values are categories, as in Evidently
        "active": "cat",
    }
    # Above 1000 reference rows Evidently's automatic choice is a distance.
    methods = {column.column: column.method for column in result.columns}
    assert {methods[name] for name in ("income", "age", "tenure", "score")} == {"wasserstein"}
    assert {methods[name] for name in ("channel", "region", "plan", "active")} == {"jensenshannon"}


def test_unshifted_data_does_not_drift() -> None:
    result = compute_drift(make_frame(5_000, 1, False), make_frame(5_000, 3, False))
    assert result.drifted_columns == []
    assert result.drift_share == 0
    assert result.dataset_drifted is False


def test_columns_are_sorted_by_severity() -> None:
    result = compute_drift(make_frame(5_000, 1, False), make_frame(5_000, 2, True))
    verdicts = [column.drifted for column in result.columns]
    assert verdicts == sorted(verdicts, reverse=True)
    ratios = [column.score / column.threshold for column in result.columns]
    assert ratios[:4] == sorted(ratios[:4], reverse=True)
    assert ratios[4:] == sorted(ratios[4:], reverse=True)


def test_options_choose_columns_methods_and_thresholds() -> None:
    reference, current = make_frame(5_000, 1, False), make_frame(5_000, 2, True)
    options = DriftOptions(
        columns=["income", "tenure", "channel"],
        method="psi",
        per_column_method={"channel": "chisquare"},
        per_column_threshold={"tenure": 0.0001},
        drift_share=0.6,
    )
    result = compute_drift(reference, current, options)
    by_name = {column.column: column for column in result.columns}
    assert set(by_name) == {"income", "tenure", "channel"}
    assert by_name["income"].method == "psi" and by_name["income"].threshold == 0.1
    assert by_name["channel"].method == "chisquare" and by_name["channel"].threshold == 0.05
    assert by_name["tenure"].threshold == 0.0001 and by_name["tenure"].drifted
    assert result.drift_share == 1.0 and result.dataset_drifted
    assert result.drift_share_threshold == 0.6


def test_categorical_columns_can_be_given() -> None:
    reference, current = make_frame(2_000, 1, False), make_frame(2_000, 2, True)
    options = DriftOptions(columns=["age", "plan"], categorical_columns=["age"])
    types = {c.column: c.column_type for c in compute_drift(reference, current, options).columns}
    assert types == {"age": "cat", "plan": "num"}


def test_sampling_reports_sizes_and_is_deterministic() -> None:
    reference, current = make_frame(20_000, 1, False), make_frame(8_000, 2, True)
    options = DriftOptions(sample_size=3_000)
    first = compute_drift(reference, current, options)
    assert (first.n_reference, first.n_current) == (3_000, 3_000)
    clear_reference_cache()
    assert compute_drift(reference, current, options) == first
    assert set(first.drifted_columns) == SHIFTED

    larger_than_data = compute_drift(reference, current, DriftOptions(sample_size=10_000))
    assert (larger_than_data.n_reference, larger_than_data.n_current) == (10_000, 8_000)
    unsampled = compute_drift(reference, current)
    assert (unsampled.n_reference, unsampled.n_current) == (20_000, 8_000)


def test_reference_is_prepared_once_for_many_windows() -> None:
    reference = make_frame(10_000, 1, False)
    windows = [make_frame(2_000, seed, shifted) for seed, shifted in ((2, True), (3, False))]
    results = [compute_drift(reference, window) for window in windows]
    info = reference_cache_info()
    assert (info.misses, info.hits, info.size) == (1, 1, 1)
    assert set(results[0].drifted_columns) == SHIFTED
    assert results[1].drifted_columns == []

    # The key is the data, not the object: an equal copy hits, a changed frame misses.
    prepared = prepare_reference(reference.copy())
    assert reference_cache_info().hits == 2
    changed = reference.copy()
    changed.loc[0, "income"] += 1
    assert prepare_reference(changed) is not prepared
    assert reference_cache_info().misses == 2

    # A prepared reference can be passed directly and gives the same result.
    assert isinstance(prepared, PreparedReference)
    assert compute_drift(prepared, windows[0]) == results[0]


def test_cache_keeps_only_the_latest_references() -> None:
    for seed in range(4):
        prepare_reference(make_frame(500, seed, False))
    info = reference_cache_info()
    assert info.size == info.max_size < 4


def test_to_dict_and_frame() -> None:
    result = compute_drift(make_frame(3_000, 1, False), make_frame(3_000, 2, True))
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {
        "engine",
        "drift_share",
        "drift_share_threshold",
        "drifted",
        "n_reference",
        "n_current",
        "columns",
        "skipped",
    }
    assert data["drifted"] is True and data["drift_share"] == 0.5
    assert set(data["columns"][0]) == {
        "column",
        "column_type",
        "method",
        "score",
        "threshold",
        "drifted",
    }
    assert [c["column"] for c in data["columns"]] == [c.column for c in result.columns]
    frame = result.columns_frame()
    assert list(frame.columns) == [
        "column",
        "column_type",
        "method",
        "score",
        "threshold",
        "drifted",
    ]
    assert frame["drifted"].sum() == 4


def test_all_null_columns_are_skipped_with_a_note() -> None:
    reference, current = make_frame(2_000, 1, False), make_frame(2_000, 2, True)
    reference["empty_in_reference"] = np.nan
    current["empty_in_reference"] = 1.0
    reference["empty_in_current"] = "x"
    current["empty_in_current"] = None
    current.loc[:, "score"] = np.inf  # infinities are dropped like nulls
    result = compute_drift(reference, current)
    assert {skip.column: skip.reason for skip in result.skipped} == {
        "empty_in_reference": "no values in the reference data (all null or infinite)",
        "empty_in_current": "no values in the current data (all null or infinite)",
        "score": "no values in the current data (all null or infinite)",
    }
    assert len(result.columns) == 7
    assert result.to_dict()["skipped"][0]["column"] == "score"

    with pytest.raises(InvalidInput, match="No column can be compared.*'empty_in_current'"):
        compute_drift(reference, current, DriftOptions(columns=["empty_in_current"]))


def test_free_text_and_dates_are_skipped() -> None:
    reference, current = make_frame(1_000, 1, False), make_frame(1_000, 2, False)
    for frame in (reference, current):
        frame["comment"] = [f"comment number {i}" for i in range(len(frame))]
        frame["signed_up"] = pd.Timestamp("2024-01-01")
    reasons = {skip.column: skip.reason for skip in compute_drift(reference, current).skipped}
    assert reasons["comment"].startswith("free text")
    assert "not compared" in reasons["signed_up"]
    assert infer_column_type(reference["comment"]) is None


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        (pd.DataFrame(), pd.DataFrame({"a": [1.0]}), "reference data is empty"),
        (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": []}), "current data is empty"),
        (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), "no column in common"),
        (
            pd.DataFrame({"price": [1.5, 2.5, 3.5]}),
            pd.DataFrame({"price": [1.5, "n/a", 3.5]}),
            "Column 'price' is numeric, but the current data holds .* \\('n/a'\\)",
        ),
        (
            pd.DataFrame({"price": [1.5, "oops", 3.5]}),
            pd.DataFrame({"price": [1.5, 2.5, 3.5]}),
            "free text",
        ),
        (
            pd.DataFrame({"plan": ["a", "b", "a", "b"]}),
            pd.DataFrame({"plan": [1, 2, 1, 2]}),
            "Column 'plan' holds text in the reference data but only numbers",
        ),
        (
            pd.DataFrame({"plan": [1, 2, 1, 2]}),
            pd.DataFrame({"plan": [1, "two", 1, 2]}),
            "Column 'plan' holds numbers in the reference data but text .*'two'",
        ),
    ],
)
def test_bad_input_is_named(reference: pd.DataFrame, current: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        compute_drift(reference, current)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DriftOptions(method="kolmogorov"), "Unknown drift method 'kolmogorov'"),
        (DriftOptions(per_column_method={"channel": "t"}), "'t' for column 'channel'"),
        (DriftOptions(method="ks"), "Method 'ks' does not apply to the categorical column"),
        (DriftOptions(per_column_method={"income": "z"}), "numeric column 'income'"),
        (DriftOptions(per_column_threshold={"nope": 0.1}), "column 'nope', which is not"),
        (DriftOptions(threshold=-1), "must be a positive number"),
        (DriftOptions(drift_share=0), "drift share"),
        (DriftOptions(sample_size=0), "sample size"),
        (DriftOptions(engine="spark"), "Unknown drift engine 'spark'"),
        (DriftOptions(columns=["missing"]), "Column 'missing' is not in the reference data"),
    ],
)
def test_bad_options_are_named(options: DriftOptions, message: str) -> None:
    reference, current = make_frame(200, 1, False), make_frame(200, 2, False)
    with pytest.raises(InvalidInput, match=message):
        compute_drift(reference, current, options)


def test_text_in_a_column_not_listed_as_categorical() -> None:
    frame = make_frame(200, 1, False)
    with pytest.raises(InvalidInput, match="Column 'channel' is numeric, but the reference"):
        compute_drift(frame, frame, DriftOptions(categorical_columns=["region"]))


def test_distribution_figures() -> None:
    reference, current = make_frame(2_000, 1, False), make_frame(2_000, 2, True)
    numeric = distribution_figure(reference, current, "income")
    assert [trace.name for trace in numeric.data] == ["reference", "current"]
    # Shared bins: both traces have the same x, and shares of each side add up to 1.
    assert list(numeric.data[0].x) == list(numeric.data[1].x)
    assert all(abs(sum(trace.y) - 1) < 1e-9 for trace in numeric.data)
    categorical = distribution_figure(reference, current, "channel")
    assert set(categorical.data[0].x) == set(CATEGORIES)
    assert categorical.layout.barmode == "group"
    with pytest.raises(InvalidInput, match="not in the current data"):
        distribution_figure(reference, current.drop(columns="income"), "income")


def test_nullable_and_unsigned_dtypes_are_compared_like_their_plain_counterparts() -> None:
    rng = np.random.default_rng(3)
    plain_reference = pd.DataFrame(
        {
            "count": rng.integers(0, 500, 1_000),
            "level": rng.integers(0, 4, 1_000).astype("uint8"),
            "ratio": rng.normal(0, 1, 1_000),
            "flag": rng.random(1_000) > 0.5,
        }
    )
    plain_current = plain_reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    plain_current["ratio"] += 0.5
    nullable = {"count": "Int64", "level": "UInt8", "ratio": "Float64", "flag": "boolean"}
    reference = plain_reference.astype(nullable)
    current = plain_current.astype(nullable)
    current.loc[:9, ["count", "ratio", "flag"]] = pd.NA
    expected = compute_drift(plain_reference, plain_current.iloc[10:])
    result = compute_drift(reference, current)
    assert sorted((c.column, c.column_type, c.method) for c in result.columns) == sorted(
        (c.column, c.column_type, c.method) for c in expected.columns
    )
    assert result.drifted_columns == expected.drifted_columns == ["ratio"]

"""Data drift between a reference and a current DataFrame, column by column.

``compute_drift`` gives the drift summary; ``DriftOptions.engine`` picks what computes it:

fast (default)
    Evidently 0.7's ``DataDriftPreset`` statistics recomputed with numpy/scipy
    (``drift_stattests.py``): the same automatic choice of method per column, the same
    default thresholds, scores and verdicts, and the same dataset verdict (drifted when the
    share of drifted columns is at least ``drift_share``). The reference is summarised once
    (sorted values, value counts, std) by ``prepare_reference`` and kept in a small LRU cache
    keyed by a fingerprint of its data, so comparing many current windows with one reference
    pays for the reference once.
evidently
    Runs Evidently's ``DataDriftPreset`` on the same columns with the same column types and
    reads methods, scores, thresholds, verdicts and the drifted share from its snapshot.

Column types
    Inferred from the reference the way Evidently infers them
    (``evidently.core.datasets.infer_column_type``): floats are numeric; integers are
    categorical with at most 10 distinct values, numeric above; booleans, pandas categories
    and text are categorical - except text where more than half the values are distinct,
    which Evidently calls free text and tests with a text model: such a column is skipped.
    Evidently infers from the current data; inferring from the reference lets a prepared
    reference serve every window, and the evidently engine is handed the same types.
    Unlike Evidently's preset, which fails on them, pandas' nullable dtypes (``Int64``,
    ``Float64``, ``boolean``) and unsigned integers (``uint8`` …) are compared: each is
    typed as its plain counterpart (``int64``, ``float64``, ``bool``) would be, with its
    missing values dropped like nulls.
    With ``categorical_columns`` given, exactly those columns are categorical and every other
    compared column must hold numbers.

Missing values
    Nulls and infinities are dropped column by column, as Evidently does. A column left with
    no value on either side is skipped and listed in ``DriftResult.skipped``; an error is
    raised only when no column remains.

Sampling
    ``sample_size`` caps the rows of each side at a random sample drawn with a fixed seed, so
    the same data and options always give the same result; ``n_reference`` and ``n_current``
    report the rows used.

Deliberate departure from Evidently: ``chisquare``
    Evidently's ``chisquare`` is a goodness-of-fit test that takes the reference counts as the
    exact expected frequencies of the current data. The reference is a sample too, so with
    samples of equal size the statistic comes out about twice as large as the chi-square law
    it is compared with, and unshifted columns are flagged far more often than the threshold
    promises: 11 of 20 unshifted pairs of 10k-row samples with 8 categories at the 5% level
    (tests/test_drift_vs_evidently.py). The fast engine's ``chisquare`` is the chi-square test
    of homogeneity of the 2 x k table of reference and current counts
    (``scipy.stats.chi2_contingency`` without Yates' correction), which accounts for both
    samples and flags 1 of those 20. The automatic choice uses it wherever Evidently's picks
    its ``chisquare`` (references of at most 1000 rows; categorical columns with more than
    two values, numeric ones with 3 to 5): same method name, sound p-value. The evidently
    engine keeps Evidently's test.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput
from mlops_core.evidence.drift_stattests import (
    STAT_TESTS,
    CategoricalColumn,
    Column,
    Kind,
    NumericColumn,
    StatTest,
    default_method,
)
from mlops_core.evidence.report_safety import harden_report

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

ENGINES = ("fast", "evidently")
METHODS = tuple(STAT_TESTS)
# Evidently's infer_column_type: integers with at most this many distinct values are categories
INTEGER_CATEGORY_LIMIT = 10
# ... and text with more than this share of distinct values is free text, not categories.
FREE_TEXT_DISTINCT_SHARE = 0.5
SAMPLE_SEED = 0
# A prepared reference of 1M rows x 25 columns holds about 200 MB of sorted values.
REFERENCE_CACHE_SIZE = 2
# Rows per side the full Evidently HTML report is built from: the report embeds the data of
# its plots and takes seconds per 10k rows.
EVIDENTLY_REPORT_SAMPLE = 5_000


@dataclass(kw_only=True)
class DriftOptions:
    """What to compare and how; every None means "as Evidently would"."""

    # None: the columns both frames have.
    columns: Sequence[str] | None = None
    # One method for every column, None for Evidently's automatic choice per column.
    method: str | None = None
    per_column_method: Mapping[str, str] = field(default_factory=dict)
    # One threshold for every column, None for the chosen method's default.
    threshold: float | None = None
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)
    # The dataset drifts when at least this share of its columns drifts.
    drift_share: float = 0.5
    # None: inferred from the reference (see the module docstring).
    categorical_columns: Sequence[str] | None = None
    # Rows per side; None for all rows.
    sample_size: int | None = None
    engine: str = "fast"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    column_type: Kind
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class SkippedColumn:
    column: str
    reason: str


@dataclass(frozen=True)
class DriftResult:
    engine: str
    drift_share: float
    dataset_drifted: bool
    drift_share_threshold: float
    n_reference: int
    n_current: int
    # Drifted columns first, then by how far past (or short of) its threshold the score is.
    columns: list[ColumnDrift]
    skipped: list[SkippedColumn] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "drifted": self.dataset_drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": [
                {**asdict(column), "score": _json_number(column.score)} for column in self.columns
            ],
            "skipped": [asdict(skipped) for skipped in self.skipped],
        }

    def columns_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [asdict(column) for column in self.columns],
            columns=[spec.name for spec in fields(ColumnDrift)],
        )


@dataclass(frozen=True, eq=False)
class PreparedColumn:
    kind: Kind
    data: Column
    # The reference holds text in this column, so numbers in the current one are a mix-up.
    text: bool


@dataclass(frozen=True, eq=False)
class PreparedReference:
    """The reference side of every statistic, computed once."""

    fingerprint: str
    n_rows: int
    # Every column considered, in frame order: prepared or skipped.
    column_names: tuple[str, ...]
    columns: dict[str, PreparedColumn]
    skipped: tuple[SkippedColumn, ...]


@dataclass(frozen=True)
class ReferenceCacheInfo:
    hits: int
    misses: int
    size: int
    max_size: int


@dataclass(frozen=True)
class EvidentlyArtifacts:
    html: str
    snapshot_json: str
    # Rows of the larger side given to Evidently: the sample size unless both sides are smaller.
    sample_size_used: int
    n_reference: int
    n_current: int


class _ReferenceCache:
    def __init__(self, max_size: int) -> None:
        self._entries: OrderedDict[tuple[Any, ...], PreparedReference] = OrderedDict()
        self._lock = threading.Lock()
        self._max_size = max_size
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> PreparedReference | None:
        with self._lock:
            prepared = self._entries.get(key)
            if prepared is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return prepared

    def put(self, key: tuple[Any, ...], prepared: PreparedReference) -> None:
        with self._lock:
            self._entries[key] = prepared
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def info(self) -> ReferenceCacheInfo:
        with self._lock:
            return ReferenceCacheInfo(self.hits, self.misses, len(self._entries), self._max_size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


_CACHE = _ReferenceCache(REFERENCE_CACHE_SIZE)


def reference_cache_info() -> ReferenceCacheInfo:
    return _CACHE.info()


def clear_reference_cache() -> None:
    _CACHE.clear()


def compute_drift(
    reference: pd.DataFrame | PreparedReference,
    current: pd.DataFrame,
    options: DriftOptions | None = None,
) -> DriftResult:
    """Drift of every compared column and of the dataset, current against reference.

    ``reference`` may be a ``PreparedReference``; the columns, categorical columns and sample
    size it was prepared with then apply to the reference side.
    """
    options = options or DriftOptions()
    _check_options(options)
    _require_rows(current, "current")
    if options.engine == "evidently":
        if isinstance(reference, PreparedReference):
            raise InvalidInput(
                "The evidently engine needs the reference DataFrame, not a prepared reference."
            )
        return _evidently_drift(reference, current, options)
    prepared = (
        reference
        if isinstance(reference, PreparedReference)
        else prepare_reference(reference, options)
    )
    plan = _plan(prepared, current, options)
    columns: list[ColumnDrift] = []
    skipped: list[SkippedColumn] = []
    for pair in _pairs(plan, options):
        if isinstance(pair, SkippedColumn):
            skipped.append(pair)
            continue
        threshold = _threshold(pair.name, pair.test, options)
        score = pair.test.compute(pair.reference, pair.current)
        drifted = bool(pair.test.drifted(score, threshold))
        columns.append(ColumnDrift(pair.name, pair.kind, pair.test.name, score, threshold, drifted))
    _require_columns(columns, skipped)
    share = sum(column.drifted for column in columns) / len(columns)
    return _result("fast", share, columns, skipped, plan, options)


def prepare_reference(
    reference: pd.DataFrame, options: DriftOptions | None = None
) -> PreparedReference:
    """Summarise the reference once; the same data and options come back from the cache."""
    options = options or DriftOptions()
    _check_options(options)
    _require_rows(reference, "reference")
    names = _reference_columns(reference, options)
    fingerprint = _fingerprint(reference, names)
    key = (
        fingerprint,
        tuple(names),
        None if options.categorical_columns is None else tuple(options.categorical_columns),
        options.sample_size,
    )
    prepared = _CACHE.get(key)
    if prepared is None:
        prepared = _prepare(_sample(reference, options.sample_size), names, options, fingerprint)
        _CACHE.put(key, prepared)
    return prepared


def evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    options: DriftOptions | None = None,
    sample_size: int = EVIDENTLY_REPORT_SAMPLE,
) -> EvidentlyArtifacts:
    """Evidently's own HTML report and snapshot JSON for a sample of each side."""
    options = options or DriftOptions()
    options = replace(options, sample_size=sample_size, engine="evidently")
    _check_options(options)
    _require_rows(current, "current")
    snapshot, plan, _, _ = _run_evidently(reference, current, options)
    n_reference, n_current = plan.prepared.n_rows, len(plan.current)
    return EvidentlyArtifacts(
        html=harden_report(snapshot.get_html_str(as_iframe=False)),
        snapshot_json=snapshot.json(),
        sample_size_used=max(n_reference, n_current),
        n_reference=n_reference,
        n_current=n_current,
    )


def infer_column_type(series: pd.Series) -> Kind | None:
    """Evidently's type for a column: "num", "cat", or None when it is not compared."""
    kind = _inferred_kind(series)
    return "num" if kind == "num" else "cat" if kind == "cat" else None


# --- options and input checks ---------------------------------------------------------------


def _check_options(options: DriftOptions) -> None:
    if options.engine not in ENGINES:
        raise InvalidInput(f"Unknown drift engine {options.engine!r}; use one of {ENGINES}.")
    for column, method in _requested_methods(options):
        if method not in STAT_TESTS:
            where = "" if column is None else f" for column '{column}'"
            raise InvalidInput(
                f"Unknown drift method {method!r}{where}; use one of {', '.join(METHODS)}."
            )
    for column, threshold in _requested_thresholds(options):
        if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold > 0):
            where = "" if column is None else f" for column '{column}'"
            raise InvalidInput(f"The drift threshold{where} must be a positive number.")
    if not 0 < options.drift_share <= 1:
        raise InvalidInput("The drift share threshold must be above 0 and at most 1.")
    if options.sample_size is not None and options.sample_size < 1:
        raise InvalidInput("The sample size must be at least one row (or unset for all rows).")


def _requested_methods(options: DriftOptions) -> list[tuple[str | None, str]]:
    overall = [] if options.method is None else [(None, options.method)]
    return overall + list(options.per_column_method.items())


def _requested_thresholds(options: DriftOptions) -> list[tuple[str | None, float]]:
    overall = [] if options.threshold is None else [(None, options.threshold)]
    return overall + list(options.per_column_threshold.items())


def _require_rows(frame: pd.DataFrame, side: str) -> None:
    if frame.empty:
        raise InvalidInput(f"The {side} data is empty: it needs at least one row and one column.")


def _reference_columns(reference: pd.DataFrame, options: DriftOptions) -> list[str]:
    if options.columns is None:
        return list(reference.columns)
    missing = [name for name in options.columns if name not in reference.columns]
    if missing:
        raise InvalidInput(f"Column '{missing[0]}' is not in the reference data.")
    return list(options.columns)


def _sample(frame: pd.DataFrame, sample_size: int | None) -> pd.DataFrame:
    if sample_size is None or len(frame) <= sample_size:
        return frame
    rows = np.random.default_rng(SAMPLE_SEED).choice(len(frame), sample_size, replace=False)
    # Keeping row order keeps np.std's summation order, hence the last digit of Evidently's.
    return frame.iloc[np.sort(rows)]


def _fingerprint(frame: pd.DataFrame, names: Sequence[str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(len(frame)).encode())
    for name in names:
        series = frame[name]
        digest.update(repr((name, str(series.dtype))).encode())
        digest.update(pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --- column types and values -------------------------------------------------------------


def _inferred_kind(series: pd.Series) -> Kind | str:
    """The column's type as Evidently infers it, or why the column is not compared."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "cat"
    if pd.api.types.is_float_dtype(dtype):
        return "num"
    if pd.api.types.is_integer_dtype(dtype):
        return "cat" if series.nunique() <= INTEGER_CATEGORY_LIMIT else "num"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return _inferred_object_kind(series)
    return _unsupported(dtype)


def _unsupported(dtype: Any) -> str:
    return f"{dtype} columns are not compared for drift"


def _supported(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _inferred_object_kind(series: pd.Series) -> Kind | str:
    values = pd.api.types.infer_dtype(series, skipna=True)
    if values in ("floating", "integer", "mixed-integer-float", "decimal"):
        return "num"
    if values in ("empty", "boolean"):
        return "cat"
    if values in ("string", "mixed", "mixed-integer"):
        if series.nunique() > FREE_TEXT_DISTINCT_SHARE * series.count():
            return (
                "free text (more than half of its values are distinct); list it among the "
                "categorical columns to compare it anyway"
            )
        return "cat"
    return f"holds {values} values, which are not compared for drift"


def _column_kind(name: str, series: pd.Series, categorical: Sequence[str] | None) -> Kind | str:
    if categorical is None:
        return _inferred_kind(series)
    if name in categorical:
        return "cat"
    return "num" if _supported(series.dtype) else _unsupported(series.dtype)


def _numeric_values(name: str, series: pd.Series, side: str) -> tuple[np.ndarray, bool]:
    """Finite values as float64, and whether they were integers."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        integer = pd.api.types.is_integer_dtype(series.dtype)
    else:
        converted = pd.to_numeric(series, errors="coerce")
        bad = series[converted.isna() & series.notna()]
        if len(bad):
            raise InvalidInput(
                f"Column '{name}' is numeric, but the {side} data holds a value in it that is "
                f"not a number ({bad.iloc[0]!r}). Fix the data, or list the column among the "
                "categorical columns."
            )
        values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
        integer = False
    finite = np.isfinite(values)
    return (values if finite.all() else values[finite]), integer


def _text_example(column: CategoricalColumn) -> str | None:
    return next((value for value in column.counts.index if isinstance(value, str)), None)


def _no_values(name: str, side: str) -> SkippedColumn:
    return SkippedColumn(name, f"no values in the {side} data (all null or infinite)")


def _reference_column(
    name: str, series: pd.Series, categorical: Sequence[str] | None
) -> PreparedColumn | SkippedColumn:
    kind = _column_kind(name, series, categorical)
    if kind == "num":
        values, integer = _numeric_values(name, series, "reference")
        if not len(values):
            return _no_values(name, "reference")
        return PreparedColumn("num", NumericColumn.from_values(values, integer), text=False)
    if kind == "cat":
        data = CategoricalColumn.from_series(series)
        if not data.n_unique:
            return _no_values(name, "reference")
        return PreparedColumn("cat", data, text=_text_example(data) is not None)
    return SkippedColumn(name, kind)


def _current_column(
    name: str, series: pd.Series, reference: PreparedColumn
) -> Column | SkippedColumn:
    if reference.kind == "num":
        values, integer = _numeric_values(name, series, "current")
        if not len(values):
            return _no_values(name, "current")
        return NumericColumn.from_values(values, integer)
    data = CategoricalColumn.from_series(series)
    if not data.n_unique:
        return _no_values(name, "current")
    example = _text_example(data)
    if reference.text and example is None:
        raise InvalidInput(
            f"Column '{name}' holds text in the reference data but only numbers in the "
            "current data."
        )
    if not reference.text and example is not None:
        raise InvalidInput(
            f"Column '{name}' holds numbers in the reference data but text in the current "
            f"data ({example!r})."
        )
    return data


def _prepare(
    reference: pd.DataFrame, names: list[str], options: DriftOptions, fingerprint: str
) -> PreparedReference:
    columns: dict[str, PreparedColumn] = {}
    skipped: list[SkippedColumn] = []
    for name in names:
        prepared = _reference_column(name, reference[name], options.categorical_columns)
        if isinstance(prepared, SkippedColumn):
            skipped.append(prepared)
        else:
            columns[name] = prepared
    return PreparedReference(fingerprint, len(reference), tuple(names), columns, tuple(skipped))


# --- planning and results ------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    prepared: PreparedReference
    # The current data, sampled.
    current: pd.DataFrame
    names: list[str]


@dataclass(frozen=True, eq=False)
class _Pair:
    """One column as both sides hold it, and the fast engine's method for it."""

    name: str
    kind: Kind
    reference: Column
    current: Column
    test: StatTest


def _plan(prepared: PreparedReference, current: pd.DataFrame, options: DriftOptions) -> _Plan:
    """The columns to compare, after every check that needs no pass over the current data."""
    if options.columns is None:
        names = [name for name in prepared.column_names if name in current.columns]
        if not names:
            raise InvalidInput("The reference and current data have no column in common.")
    else:
        names = list(options.columns)
        for name in names:
            if name not in current.columns:
                raise InvalidInput(f"Column '{name}' is not in the current data.")
            if name not in prepared.column_names:
                raise InvalidInput(f"Column '{name}' is not in the prepared reference.")
    for name, _ in _requested_methods(options) + _requested_thresholds(options):
        if name is not None and name not in names:
            raise InvalidInput(
                f"A method or threshold is set for column '{name}', which is not compared."
            )
    for name in names:
        if name in prepared.columns:
            _requested_test(name, prepared.columns[name].kind, options)
    return _Plan(prepared, _sample(current, options.sample_size), names)


def _pairs(plan: _Plan, options: DriftOptions) -> Iterator[_Pair | SkippedColumn]:
    """Each column in turn, the current side summarised only when its turn comes: one sorted
    copy of a current column is in memory at a time, not all of them."""
    reference_skips = {skipped.column: skipped for skipped in plan.prepared.skipped}
    for name in plan.names:
        if name in reference_skips:
            yield reference_skips[name]
            continue
        reference = plan.prepared.columns[name]
        current = _current_column(name, plan.current[name], reference)
        if isinstance(current, SkippedColumn):
            yield current
            continue
        test = (
            _requested_test(name, reference.kind, options)
            or STAT_TESTS[default_method(reference.kind, reference.data, current)]
        )
        yield _Pair(name, reference.kind, reference.data, current, test)


def _require_columns(compared: Sized, skipped: list[SkippedColumn]) -> None:
    if not compared:
        reasons = "; ".join(f"'{skip.column}': {skip.reason}" for skip in skipped)
        raise InvalidInput(f"No column can be compared for drift. {reasons}")


def _requested_test(name: str, kind: Kind, options: DriftOptions) -> StatTest | None:
    """The method asked for this column, if any, checked against its type."""
    requested = options.per_column_method.get(name, options.method)
    if requested is None:
        return None
    test = STAT_TESTS[requested]
    if kind not in test.kinds:
        kind_name = {"num": "numeric", "cat": "categorical"}
        usable = [other for other, spec in STAT_TESTS.items() if kind in spec.kinds]
        raise InvalidInput(
            f"Method '{requested}' does not apply to the {kind_name[kind]} column '{name}'. "
            f"Methods for {kind_name[kind]} columns: {', '.join(usable)}."
        )
    return test


def _threshold(name: str, test: StatTest, options: DriftOptions) -> float:
    threshold = options.per_column_threshold.get(name, options.threshold)
    return test.default_threshold if threshold is None else float(threshold)


def _result(
    engine: str,
    share: float,
    columns: list[ColumnDrift],
    skipped: list[SkippedColumn],
    plan: _Plan,
    options: DriftOptions,
) -> DriftResult:
    def severity(column: ColumnDrift) -> float:
        return STAT_TESTS[column.method].severity(column.score, column.threshold)

    return DriftResult(
        engine=engine,
        drift_share=share,
        dataset_drifted=share >= options.drift_share,
        drift_share_threshold=options.drift_share,
        n_reference=plan.prepared.n_rows,
        n_current=len(plan.current),
        columns=sorted(columns, key=lambda column: (not column.drifted, -severity(column))),
        skipped=skipped,
    )


# --- the evidently engine ------------------------------------------------------------------


def _run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions
) -> tuple[Snapshot, _Plan, dict[str, Kind], list[SkippedColumn]]:
    # Imported here: evidently takes seconds to import and only this engine needs it.
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # The fast engine's checks and column types, so both engines compare the same columns.
    plan = _plan(prepare_reference(reference, options), current, options)
    kinds: dict[str, Kind] = {}
    skipped: list[SkippedColumn] = []
    for pair in _pairs(plan, options):
        if isinstance(pair, SkippedColumn):
            skipped.append(pair)
        else:
            kinds[pair.name] = pair.kind
    _require_columns(kinds, skipped)
    names = list(kinds)
    definition = DataDefinition(
        numerical_columns=[name for name in names if kinds[name] == "num"],
        categorical_columns=[name for name in names if kinds[name] == "cat"],
    )
    preset = DataDriftPreset(
        columns=names,
        drift_share=options.drift_share,
        method=options.method,
        per_column_method=dict(options.per_column_method) or None,
        threshold=options.threshold,
        per_column_threshold=dict(options.per_column_threshold) or None,
    )
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(plan.current[names], data_definition=definition),
        Dataset.from_pandas(
            _sample(reference, options.sample_size)[names], data_definition=definition
        ),
    )
    return snapshot, plan, kinds, skipped


def _evidently_method_names() -> dict[str, str]:
    """Evidently reports an automatically chosen method by its display name."""
    from evidently.legacy.calculations import stattests

    tests = (
        stattests.ks_stat_test,
        stattests.wasserstein_stat_test,
        stattests.psi_stat_test,
        stattests.jensenshannon_stat_test,
        stattests.chi_stat_test,
        stattests.z_stat_test,
    )
    return {test.display_name: test.name for test in tests}


def _evidently_drift(
    reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions
) -> DriftResult:
    snapshot, plan, kinds, skipped = _run_evidently(reference, current, options)
    content = snapshot.dict()
    verdicts = {
        test["metric_config"]["params"]["column"]: test["status"] == "FAIL"
        for test in content["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    method_names = _evidently_method_names()
    share = math.nan
    columns = []
    for metric in content["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            name = config["column"]
            columns.append(
                ColumnDrift(
                    name,
                    kinds[name],
                    method_names.get(config["method"], config["method"]),
                    float(metric["value"]),
                    float(config["threshold"]),
                    verdicts[name],
                )
            )
    return _result("evidently", share, columns, skipped, plan, options)

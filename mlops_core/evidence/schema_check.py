"""Does a data frame fit a model's input signature? Missing, extra, mistyped and null columns.

Types are compared by family (integer, float, string, boolean, datetime), not by exact
dtype: the question is whether the data means what the model expects, and e.g. an integer
column read as float64 only because it has nulls is a null problem, not a type problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from mlflow.types import DataType, Schema

from mlops_core.errors import InvalidInput, NotFound
from mlops_core.policy import BOOKKEEPING_COLUMNS
from mlops_core.stores.model_files import mlmodel_of
from mlops_core.stores.registry import Registry

ProblemKind = Literal["missing_column", "unexpected_column", "wrong_type", "unexpected_nulls"]
SignatureInputs = Schema | Sequence[tuple[str, str] | tuple[str, str, bool]]


# MLflow type -> the dtype family a column must have, and how to name it to a person.
EXPECTED_FAMILY = {
    DataType.double.name: "float",
    DataType.float.name: "float",
    DataType.long.name: "integer",
    DataType.integer.name: "integer",
    DataType.string.name: "string",
    DataType.boolean.name: "boolean",
    DataType.datetime.name: "datetime",
    DataType.binary.name: "bytes",
}
FAMILY_WORDS = {
    "float": "numbers",
    "integer": "whole numbers",
    "string": "text",
    "boolean": "true/false values",
    "datetime": "timestamps",
    "bytes": "binary values",
    "mixed": "values of mixed types",
}
# Families a column may have for an expected family; integers widen to floats losslessly.
ACCEPTED = {"float": {"float", "integer"}}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class SchemaProblem:
    kind: ProblemKind
    column: str
    expected: str | None
    observed: str | None
    detail: str


@dataclass(frozen=True)
class SchemaReport:
    problems: list[SchemaProblem]
    checked_columns: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, kind: ProblemKind) -> list[SchemaProblem]:
        return [p for p in self.problems if p.kind == kind]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked_columns": list(self.checked_columns),
            "problems": [asdict(p) for p in self.problems],
        }


def check_schema(
    frame: pd.DataFrame,
    signature_inputs: SignatureInputs,
    *,
    allow_extra: bool = False,
    ignore: Iterable[str] = tuple(BOOKKEEPING_COLUMNS),
) -> SchemaReport:
    """Compare `frame` with the model inputs; `ignore` only silences unexpected columns
    (callers with a policy pass its `DataSources.bookkeeping_columns`, renamed ones included)."""
    specs = input_specs(signature_inputs)
    problems: list[SchemaProblem] = []
    for spec in specs:
        if spec.name not in frame.columns:
            if spec.required:
                problems.append(_missing(spec))
            continue
        problems += _column_problems(frame[spec.name], spec)
    if not allow_extra:
        expected = {spec.name for spec in specs} | set(ignore)
        problems += [_unexpected(frame[c]) for c in frame.columns if c not in expected]
    checked = [spec.name for spec in specs if spec.name in frame.columns]
    return SchemaReport(problems, checked)


def input_specs(signature_inputs: SignatureInputs) -> list[InputSpec]:
    """Normalise an MLflow input schema or (name, type[, required]) tuples."""
    if isinstance(signature_inputs, Schema):
        if signature_inputs.is_tensor_spec() or not signature_inputs.has_input_names():
            raise InvalidInput(
                "The model signature describes tensors or unnamed inputs, not named columns."
            )
        return [
            InputSpec(spec.name, _type_name(spec.type), spec.required)
            for spec in signature_inputs.inputs
        ]
    return [InputSpec(item[0], _type_name(item[1]), *item[2:]) for item in signature_inputs]


def signature_inputs_for_version(
    registry: Registry, model_name: str, version: str | int
) -> list[tuple[str, str, bool]]:
    """(name, type, required) of each input column in a registered version's signature."""
    signature = mlmodel_of(registry, model_name, version).signature
    if signature is None or signature.inputs is None:
        raise NotFound(f"Version {version} of {model_name!r} was logged without a signature.")
    return [(s.name, s.type, s.required) for s in input_specs(signature.inputs)]


def _type_name(data_type: object) -> str:
    return data_type.name if isinstance(data_type, DataType) else str(data_type)


def _missing(spec: InputSpec) -> SchemaProblem:
    return SchemaProblem(
        "missing_column",
        spec.name,
        spec.type,
        None,
        f"The model needs column {spec.name!r} ({spec.type}), which the data does not have.",
    )


def _unexpected(series: pd.Series) -> SchemaProblem:
    return SchemaProblem(
        "unexpected_column",
        str(series.name),
        None,
        str(series.dtype),
        f"Column {series.name!r} is not a model input.",
    )


def _column_problems(series: pd.Series, spec: InputSpec) -> list[SchemaProblem]:
    problems = []
    expected = EXPECTED_FAMILY.get(spec.type)
    observed = observed_family(series)
    # An integer column with nulls arrives as float64: that is reported as the nulls alone.
    nulls_made_it_float = expected == "integer" and observed == "float" and _whole(series)
    type_fits = observed in ACCEPTED.get(expected, {expected}) or nulls_made_it_float
    if expected is not None and observed != "empty" and not type_fits:
        problems.append(_wrong_type(series, spec, expected, observed))
    missing = int(series.isna().sum())
    if spec.required and missing:
        share = missing / len(series)
        problems.append(
            SchemaProblem(
                "unexpected_nulls",
                spec.name,
                spec.type,
                f"{missing} nulls",
                f"{missing:,} of {len(series):,} values ({share:.1%}) in {spec.name!r} are "
                "missing, but the model requires a value.",
            )
        )
    return problems


def observed_family(series: pd.Series) -> str:
    """The dtype family of a column; object columns are judged by their values."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return observed_family(pd.Series(dtype.categories))
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {
        "string": "string",
        "empty": "empty",
        "boolean": "boolean",
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
        "decimal": "float",
        "datetime": "datetime",
        "datetime64": "datetime",
        "date": "datetime",
        "bytes": "bytes",
    }.get(inferred, "mixed")


def _whole(series: pd.Series) -> bool:
    values = pd.to_numeric(series.dropna(), errors="coerce")
    return bool((values == values.round()).all())


def _wrong_type(series: pd.Series, spec: InputSpec, expected: str, observed: str) -> SchemaProblem:
    example = _example_misfit(series, expected)
    shown = f", e.g. {example!r}" if example is not None else ""
    return SchemaProblem(
        "wrong_type",
        spec.name,
        spec.type,
        str(series.dtype),
        f"{spec.name!r} should hold {FAMILY_WORDS.get(expected, expected)} ({spec.type}) but "
        f"holds {FAMILY_WORDS.get(observed, observed)} (dtype {series.dtype}){shown}.",
    )


def _example_misfit(series: pd.Series, expected: str) -> object | None:
    values = series.dropna()
    if expected in ("float", "integer"):
        misfits = values[pd.to_numeric(values, errors="coerce").isna()]
        if expected == "integer" and misfits.empty:
            numbers = pd.to_numeric(values, errors="coerce")
            misfits = values[numbers != numbers.round()]
    else:
        misfits = values
    if misfits.empty:
        return None
    first = misfits.iloc[0]
    return first.item() if isinstance(first, np.generic) else first

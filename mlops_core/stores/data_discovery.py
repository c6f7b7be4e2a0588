"""Finding a version's reference and evaluation data without a hand-written policy.

A team's registry rarely follows the panel's demo convention, but MLflow itself usually
knows where the data is. The sources are tried in this order, and the first that yields
a table wins:

1. the policy's `data.reference` / `data.evaluation`, when the policy names them (then
   nothing else is tried: a wrong path is an error, not a reason to guess);
2. the datasets logged with the version's run (`mlflow.log_input`, context `training` for
   the reference set, `evaluation` for the evaluation set), loaded from their source (a
   file, a file:// or http(s) URI, an artifact store) or, when that is gone or changed,
   from an artifact of the run whose content matches the digest MLflow recorded;
3. for the evaluation set, the table `mlflow.evaluate` logs (``eval_results_table.json``)
   on a run that evaluated the version's logged model;
4. the demo's convention, ``reference/reference.parquet`` / ``evaluation/evaluation.parquet``
   among the run's artifacts.

Whatever is loaded is held to the data limits (MLOPS_MAX_DATA_ROWS / _MB), and its
description says which source it came from, so every page and command can say so.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import mlflow.data
import pandas as pd
import requests
from mlflow.data.digest_utils import compute_pandas_digest
from mlflow.entities import DatasetInput, Run
from mlflow.exceptions import MlflowException
from requests.exceptions import RequestException

from mlops_core.config import data_limits
from mlops_core.errors import InvalidInput, MlopsError, NotFound, PolicyDataMissing
from mlops_core.policy import ModelPolicy
from mlops_core.stores.registry import Registry, VersionInfo
from mlops_core.stores.sources import (
    LoadedData,
    as_loaded,
    load_file,
    load_run_artifact_frame,
    read_table_file,
)

Role = Literal["reference", "evaluation"]
SourceKind = Literal["policy", "logged_dataset", "evaluation_table", "artifact_convention"]

ARTIFACT_PREFIX = "artifact:"
CONTEXT_TAG = "mlflow.data.context"
# The contexts teams give `mlflow.log_input` for each role.
CONTEXTS: dict[Role, tuple[str, ...]] = {
    "reference": ("training", "train"),
    "evaluation": ("evaluation", "eval", "validation", "test"),
}
CONVENTION: dict[Role, str] = {
    "reference": "reference/reference.parquet",
    "evaluation": "evaluation/evaluation.parquet",
}
EVAL_TABLE = "eval_results_table.json"
# What `mlflow.evaluate` names the model's output in its table.
EVAL_OUTPUT_COLUMN = "outputs"
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# Bounds on the searches, so a registry with thousands of runs answers in one page.
MAX_EVALUATION_RUNS = 20
MAX_ARTIFACT_CANDIDATES = 20
HTTP_TIMEOUT_SECONDS = 30
DOWNLOAD_CHUNK = 1024 * 1024


@dataclass(frozen=True, eq=False)
class FoundData:
    """A version's data and where it came from.

    `label_column` and `prediction_column` are set when the source itself names them
    (the target and output columns of an `mlflow.evaluate` table).
    """

    kind: SourceKind
    role: Role
    loaded: LoadedData
    label_column: str | None = None
    prediction_column: str | None = None

    @property
    def description(self) -> str:
        return self.loaded.description


@dataclass
class _Search:
    """What was tried for one role, for the message when nothing is found."""

    role: Role
    notes: dict[SourceKind, list[str]] = field(default_factory=dict)

    def note(self, kind: SourceKind, text: str) -> None:
        self.notes.setdefault(kind, []).append(text)

    def seen(self, kind: SourceKind, default: str) -> str:
        return "; ".join(self.notes.get(kind, [])) or default


def policy_location(policy: ModelPolicy, role: Role) -> str | None:
    """The location the policy names for `role`, or None when it leaves it to discovery."""
    return policy.data.reference if role == "reference" else policy.data.evaluation


def load_data_location(
    registry: Registry, run_id: str | None, location: str, sample_size: int | None = None
) -> LoadedData:
    """``artifact:<path>`` is an artifact of the run; anything else is a CSV/Parquet file."""
    if location.startswith(ARTIFACT_PREFIX):
        if run_id is None:
            raise InvalidInput(
                f"The data location {location!r} is an artifact of the version's run, "
                "but the version has no run."
            )
        return load_run_artifact_frame(
            registry.client, run_id, location[len(ARTIFACT_PREFIX) :], sample_size
        )
    return load_file(Path(location).expanduser(), sample_size)


def find_data(
    registry: Registry,
    policy: ModelPolicy,
    version: VersionInfo,
    role: Role,
    sample_size: int | None = None,
) -> FoundData:
    """The version's reference or evaluation set from the first source that has it."""
    location = policy_location(policy, role)
    if location is not None:
        try:
            loaded = load_data_location(registry, version.run_id, location, sample_size)
        except (NotFound, InvalidInput) as exc:
            # The policy said where; guessing elsewhere would gate on data nobody chose.
            raise PolicyDataMissing(
                f"{exc} The policy names it (data.{role} = {location!r}) for "
                f"v{version.version} of {version.model_name}: fix or remove that key; without "
                "it the panel looks for logged datasets, the mlflow.evaluate table and the "
                "artifact convention."
            ) from None
        return FoundData("policy", role, _described(loaded, f"policy data.{role}", sample_size))
    search = _Search(role)
    run = _run(registry, version, search)
    found = (
        _logged_dataset(registry, run, role, sample_size, search)
        or _evaluation_table(registry, version, sample_size, search)
        or _convention(registry, version, role, sample_size, search)
    )
    if found is None:
        raise NotFound(_not_found(version, search))
    return found


def _described(loaded: LoadedData, origin: str, sample_size: int | None) -> LoadedData:
    text = f"{loaded.description} ({origin})"
    return LoadedData(loaded.frame, text, loaded.total_rows, sample_size)


def _run(registry: Registry, version: VersionInfo, search: _Search) -> Run | None:
    if version.run_id is None:
        search.note("logged_dataset", "the version has no run")
        return None
    try:
        with registry._calling():
            return registry.client.get_run(version.run_id)
    except NotFound:
        search.note("logged_dataset", f"its run {version.run_id} does not exist")
        return None


# --- 2. datasets logged with the run --------------------------------------------------------


def _logged_dataset(
    registry: Registry, run: Run | None, role: Role, sample_size: int | None, search: _Search
) -> FoundData | None:
    if run is None:
        return None
    inputs = [
        item
        for item in run.inputs.dataset_inputs
        if _context(item) in CONTEXTS[role] and item.dataset.source_type != "code"
    ]
    if not inputs:
        contexts = " / ".join(CONTEXTS[role])
        search.note("logged_dataset", f"run {run.info.run_id} logged no {contexts} dataset")
    for item in inputs:
        frame, where = _dataset_frame(registry, run, item, search)
        if frame is not None:
            dataset = item.dataset
            text = (
                f"{_context(item)} dataset {dataset.name!r} logged with run {run.info.run_id} "
                f"(mlflow.log_input), {where}"
            )
            return FoundData("logged_dataset", role, as_loaded(frame, text, sample_size))
    return None


def _context(item: DatasetInput) -> str:
    return next((tag.value for tag in item.tags if tag.key == CONTEXT_TAG), "").lower()


def _dataset_frame(
    registry: Registry, run: Run, item: DatasetInput, search: _Search
) -> tuple[pd.DataFrame | None, str]:
    """The dataset's rows from its own source, else from an artifact with its digest."""
    dataset = item.dataset
    try:
        frame, where = _from_source(item)
    except (NotFound, MlflowException, RequestException, OSError) as exc:
        # Gone or out of reach: the run may still hold a copy. A file that is there but
        # unreadable or over the data limits is an error of its own (InvalidInput).
        search.note("logged_dataset", f"dataset {dataset.name!r} cannot be loaded: {exc}")
    else:
        if _digest(frame) == dataset.digest:
            return frame, where
        search.note(
            "logged_dataset",
            f"dataset {dataset.name!r} at {where} no longer matches the digest MLflow "
            f"recorded ({dataset.digest})",
        )
    return _matching_artifact(registry, run.info.run_id, dataset.digest)


def _digest(frame: pd.DataFrame) -> str | None:
    try:
        return compute_pandas_digest(frame)
    except (TypeError, ValueError):
        return None


def _from_source(item: DatasetInput) -> tuple[pd.DataFrame, str]:
    source = mlflow.data.get_source(item)
    uri = str(getattr(source, "uri", None) or getattr(source, "url", None) or "")
    scheme = urlparse(uri).scheme
    if item.dataset.source_type == "local" or scheme in ("", "file"):
        path = Path(unquote(urlparse(uri).path) if scheme == "file" else uri).expanduser()
        return read_table_file(path, path.name), str(path)
    with tempfile.TemporaryDirectory(prefix="mlops-dataset-") as folder:
        if item.dataset.source_type == "http":
            local = _download(uri, Path(folder))
        else:
            # Artifact stores MLflow knows (s3, gs, mlflow-artifacts, ...) load themselves.
            loaded = source.load(dst_path=folder)
            if not isinstance(loaded, str | Path):
                # Such as a Hugging Face dataset: not a file the panel reads.
                raise NotFound(f"the {item.dataset.source_type} source {uri} is not a file")
            local = Path(loaded)
        if local.is_dir():
            raise InvalidInput(f"{uri} is a folder, not a CSV/Parquet file")
        return read_table_file(local, local.name, max_bytes=_max_bytes()), uri


def _max_bytes() -> int:
    return data_limits().max_megabytes * 1024 * 1024


def _download(url: str, folder: Path) -> Path:
    """The file at `url`, cut off past the data limit instead of filling the disk."""
    if urlparse(url).scheme not in ("http", "https"):
        raise InvalidInput(f"{url} is not an http(s) URL")
    target = folder / (Path(urlparse(url).path).name or "dataset")
    limit, size = _max_bytes(), 0
    with requests.get(url, stream=True, timeout=HTTP_TIMEOUT_SECONDS) as response:
        response.raise_for_status()
        with target.open("wb") as handle:
            for chunk in response.iter_content(DOWNLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise InvalidInput(f"{url} is larger than {limit:,} bytes (MLOPS_MAX_DATA_MB)")
                handle.write(chunk)
    return target


def _matching_artifact(
    registry: Registry, run_id: str, digest: str
) -> tuple[pd.DataFrame | None, str]:
    """A CSV/Parquet artifact of the run (top level or one folder down) with that digest."""
    with registry._calling():
        top = registry.client.list_artifacts(run_id)
        entries = [info for info in top if not info.is_dir]
        for folder in [info for info in top if info.is_dir][:MAX_ARTIFACT_CANDIDATES]:
            entries += registry.client.list_artifacts(run_id, folder.path)
    tables = [info.path for info in entries if info.path.lower().endswith(TABLE_SUFFIXES)]
    for path in tables[:MAX_ARTIFACT_CANDIDATES]:
        try:
            frame = load_run_artifact_frame(registry.client, run_id, path).frame
        except MlopsError:
            continue
        if _digest(frame) == digest:
            return frame, f"artifact {path} of run {run_id} (its digest matches)"
    return None, ""


# --- 3. the table mlflow.evaluate logs ------------------------------------------------------


def _evaluation_table(
    registry: Registry, version: VersionInfo, sample_size: int | None, search: _Search
) -> FoundData | None:
    if search.role != "evaluation":
        return None
    model_id = version.logged_model_id
    if model_id is None:
        search.note("evaluation_table", "the version has no MLflow 3 logged model")
        return None
    for run_id in _evaluation_runs(registry, version, model_id):
        if EVAL_TABLE not in _top_artifacts(registry, run_id):
            continue
        frame = _read_eval_table(registry, run_id)
        label, prediction = _eval_columns(frame)
        text = (
            f"evaluation table {EVAL_TABLE} logged by mlflow.evaluate on run {run_id} "
            f"(label {label!r}, prediction {prediction!r})"
        )
        return FoundData(
            "evaluation_table", "evaluation", as_loaded(frame, text, sample_size), label, prediction
        )
    search.note("evaluation_table", f"no run that evaluated logged model {model_id} has one")
    return None


def _evaluation_runs(registry: Registry, version: VersionInfo, model_id: str) -> list[str]:
    """Runs other than the training run that logged metrics on the logged model (what
    `mlflow.evaluate` does), newest first."""
    try:
        with registry._calling():
            logged = registry.client.get_logged_model(model_id)
    except NotFound:
        return []
    run_ids = {m.run_id for m in logged.metrics or [] if m.run_id and m.run_id != version.run_id}
    runs = []
    for run_id in list(run_ids)[:MAX_EVALUATION_RUNS]:
        with registry._calling():
            runs.append(registry.client.get_run(run_id))
    runs.sort(key=lambda run: run.info.start_time or 0, reverse=True)
    return [run.info.run_id for run in runs]


def _top_artifacts(registry: Registry, run_id: str) -> set[str]:
    with registry._calling():
        return {info.path for info in registry.client.list_artifacts(run_id)}


def _read_eval_table(registry: Registry, run_id: str) -> pd.DataFrame:
    limits = data_limits()
    with tempfile.TemporaryDirectory(prefix="mlops-eval-table-") as folder:
        with registry._calling():
            local = Path(registry.client.download_artifacts(run_id, EVAL_TABLE, folder))
        if local.stat().st_size > _max_bytes():
            raise InvalidInput(
                f"{EVAL_TABLE} of run {run_id} is larger than the {limits.max_megabytes:,} MB "
                "limit for data (MLOPS_MAX_DATA_MB)."
            )
        try:
            table = json.loads(local.read_text(encoding="utf-8"))
            frame = pd.DataFrame(table["data"], columns=table["columns"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            raise InvalidInput(
                f"{EVAL_TABLE} of run {run_id} is not the table mlflow.evaluate writes "
                '({"columns": [...], "data": [...]}).'
            ) from None
    if len(frame) > limits.max_rows:
        raise InvalidInput(
            f"{EVAL_TABLE} of run {run_id} holds {len(frame):,} rows, over the limit of "
            f"{limits.max_rows:,} (MLOPS_MAX_DATA_ROWS)."
        )
    if frame.empty:
        raise InvalidInput(f"{EVAL_TABLE} of run {run_id} has no rows.")
    return frame


def _eval_columns(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """(label, prediction): mlflow.evaluate writes the features, then the target, then the
    model's `outputs`, then per-row metric scores."""
    columns = list(frame.columns)
    if EVAL_OUTPUT_COLUMN not in columns:
        return None, None
    index = columns.index(EVAL_OUTPUT_COLUMN)
    return (columns[index - 1] if index > 0 else None), EVAL_OUTPUT_COLUMN


# --- 4. the demo's artifact convention ------------------------------------------------------


def _convention(
    registry: Registry, version: VersionInfo, role: Role, sample_size: int | None, search: _Search
) -> FoundData | None:
    path = CONVENTION[role]
    if version.run_id is None:
        search.note("artifact_convention", "the version has no run")
        return None
    try:
        loaded = load_run_artifact_frame(registry.client, version.run_id, path, sample_size)
    except NotFound:
        search.note("artifact_convention", f"run {version.run_id} has no artifact {path}")
        return None
    origin = "the panel's artifact convention"
    return FoundData("artifact_convention", role, _described(loaded, origin, sample_size))


def _not_found(version: VersionInfo, search: _Search) -> str:
    role = search.role
    model = version.model_name
    contexts = " / ".join(f'"{c}"' for c in CONTEXTS[role])
    options = [
        f'1. the policy: set data.{role} under [models."{model}".data] in the policy file '
        "(MLOPS_POLICY_FILE), e.g. a CSV/Parquet path or artifact:<path> of the run",
        "2. a dataset logged with the version's run, "
        f"mlflow.log_input(dataset, context={contexts}) "
        f"({search.seen('logged_dataset', 'none found')})",
    ]
    if role == "evaluation":
        options.append(
            f"3. the table mlflow.evaluate logs ({EVAL_TABLE}) for the version's logged model "
            f"({search.seen('evaluation_table', 'none found')})"
        )
    options.append(
        f"{len(options) + 1}. the artifact {CONVENTION[role]} of the version's run "
        f"({search.seen('artifact_convention', 'none found')})"
    )
    return (
        f"No {role} data found for {model} v{version.version}. Looked, in this order, at: "
        + "; ".join(options)
        + "."
    )

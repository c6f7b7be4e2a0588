"""Check how a registered model version behaves: the entry point the CLI, worker and pages use.

`run_checks` resolves the version, downloads its model files to a temporary folder, picks
the rows to feed it (the version's input example, else the first rows of its evaluation
set, inputs only) and runs the probe in the sandbox. It never loads the model itself:
MLflow's `Model` reads the MLmodel file and input example, which runs none of the model's
code. Unknown models and versions, an unreachable registry and a version without rows
raise; whatever the model does (fail to load, crash, hang, eat memory) is in the report.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow.artifacts
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from requests.exceptions import RequestException

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, NotFound
from mlops_core.evidence.behaviour.probe import (
    LATENCY_CALLS,
    THROUGHPUT_ROWS,
    WARMUP_CALLS,
    ProbeJob,
    empty_report,
)
from mlops_core.evidence.behaviour.report import CheckReport, Progress
from mlops_core.evidence.behaviour.sandbox import run_probe
from mlops_core.evidence.fairness_evidence import model_policy, resolve_version
from mlops_core.policy import ModelPolicy
from mlops_core.stores.data_discovery import find_data
from mlops_core.stores.registry import Registry, VersionInfo

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_MB = 4096
# Rows of the evaluation set fed to the model when the version has no input example.
MAX_EVALUATION_ROWS = 1000
INPUT_EXAMPLE = "the version's input example"

logger = logging.getLogger(__name__)


class NoRows(InvalidInput):
    """The version has neither an input example nor an evaluation set to check it on."""


def model_uri(version: VersionInfo) -> str:
    return f"models:/{version.model_name}/{version.version}"


def _download(registry: Registry, version: VersionInfo, folder: Path) -> Path:
    # The version's own artifact location: a `models:/` URI would be resolved against
    # MLflow's global registry URI, not this registry's.
    location = registry.client.get_model_version_download_uri(version.model_name, version.version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=location, dst_path=str(folder), tracking_uri=registry.tracking_uri
    )
    return Path(local)


def _tabular(example: object) -> pd.DataFrame | None:
    """The input example as rows, or None when it is not a table (a tensor, a string)."""
    try:
        frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    except (ValueError, TypeError):
        return None
    return None if frame.empty else frame.reset_index(drop=True)


def _evaluation_rows(
    registry: Registry, policy: ModelPolicy, version: VersionInfo, inputs: list[str] | None
) -> tuple[pd.DataFrame, str]:
    found = find_data(registry, policy, version, "evaluation")
    frame = found.loaded.frame
    if inputs and all(name in frame.columns for name in inputs):
        features = inputs
    else:
        # The label, the model's own outputs and ids are not inputs, whatever they are called.
        ignored = {*policy.data.bookkeeping_columns, found.label_column, found.prediction_column}
        features = [c for c in frame.columns if c not in ignored]
    rows = frame[features].head(MAX_EVALUATION_ROWS).reset_index(drop=True)
    if rows.empty or not features:
        raise NoRows(f"the evaluation set ({found.description}) has no input rows")
    return rows, f"evaluation set: {found.description} (first {len(rows)} rows)"


def _input_example(mlmodel: Model, model_dir: Path) -> pd.DataFrame | None:
    if not mlmodel.saved_input_example_info:
        return None
    try:
        example = mlmodel.load_input_example(str(model_dir))
    except (MlflowException, OSError, ValueError) as exc:
        logger.warning("The input example of %s cannot be read: %s", model_dir, exc)
        return None
    return None if example is None else _tabular(example)


def pick_rows(
    registry: Registry,
    policy: ModelPolicy,
    version: VersionInfo,
    mlmodel: Model,
    model_dir: Path,
) -> tuple[pd.DataFrame, str]:
    """The rows to check the model on, and where they came from."""
    example = _input_example(mlmodel, model_dir)
    if example is not None:
        return example, INPUT_EXAMPLE
    inputs = mlmodel.signature.inputs.input_names() if mlmodel.signature else None
    try:
        return _evaluation_rows(registry, policy, version, inputs)
    except NotFound as exc:
        raise NoRows(
            f"{version.model_name} v{version.version} has no input example and no evaluation "
            f"set to check it on: {exc}"
        ) from None


def _failed(job: ProbeJob, why: str) -> CheckReport:
    """A report of a check that never reached the sandbox."""
    return replace(empty_report(job), failure=why.splitlines()[0])


def run_checks(
    settings: Settings,
    model: str,
    version: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    on_progress: Callable[[Progress], None] | None = None,
    latency_calls: int = LATENCY_CALLS,
    throughput_rows: int = THROUGHPUT_ROWS,
) -> CheckReport:
    """Check the version in the sandbox: its report, with `failure` set when the sandbox
    did not complete (timeout, memory, the model failing to load or download)."""
    if timeout_s <= 0 or memory_mb <= 0:
        raise InvalidInput("The timeout and the memory limit must be positive.")
    if latency_calls < 1 or throughput_rows < 1:
        raise InvalidInput("The latency calls and the throughput rows must be at least 1.")
    registry = Registry(settings.tracking_uri)
    found = resolve_version(registry, model, version)
    policy = model_policy(settings, model)
    with tempfile.TemporaryDirectory(prefix="mlops-checks-") as folder:
        work = Path(folder)
        job = ProbeJob(
            model_dir="",
            rows_path=str(work / "rows.parquet"),
            output_path=str(work / "report.json"),
            model=model,
            version=found.version,
            run_id=found.run_id,
            model_uri=model_uri(found),
            input_source="",
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            latency_calls=latency_calls,
            warmup_calls=min(WARMUP_CALLS, latency_calls),
            throughput_rows=throughput_rows,
        )
        try:
            model_dir = _download(registry, found, work / "model")
        except (MlflowException, RequestException, OSError) as exc:
            return _failed(job, f"the model's files could not be downloaded: {exc}")
        try:
            mlmodel = Model.load(str(model_dir))
        except (MlflowException, OSError, ValueError, yaml.YAMLError) as exc:
            return _failed(job, f"the version's files are not an MLflow model: {exc}")
        rows, source = pick_rows(registry, policy, found, mlmodel, model_dir)
        try:
            rows.to_parquet(job.rows_path, index=False)
        except (ValueError, TypeError, ImportError) as exc:
            raise InvalidInput(f"The rows to check {model} v{found.version} on: {exc}") from None
        job = replace(job, model_dir=str(model_dir), input_source=source)
        return run_probe(job, on_progress)

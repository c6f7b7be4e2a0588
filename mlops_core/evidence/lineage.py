"""Where a model version comes from: its run, the data that run used, and its model files.

Since MLflow 3 a version registered from `log_model` points at a logged model
(`models:/m-…`): the model's files, flavors, params and metrics live on that logged model,
and the run keeps no model artifacts. Older versions point at the run's artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from mlops_core.errors import NotFound
from mlops_core.stores.registry import LoggedModelInfo, Registry, RunDetail, VersionInfo

DATASET_COLUMNS = ["context", "name", "digest", "source_type", "source"]
LOGGED_METRIC_COLUMNS = ["metric", "value", "step", "dataset"]


@dataclass(frozen=True)
class Lineage:
    """A version's source run, that run's dataset inputs and artifacts, its logged model."""

    version: VersionInfo
    run: RunDetail | None
    experiment_name: str | None
    datasets: pd.DataFrame
    artifacts: list[str]
    logged_model: LoggedModelInfo | None = None
    # Why the logged model the version names could not be read (deleted, unreachable).
    logged_model_problem: str | None = None

    @property
    def logged_model_metrics(self) -> pd.DataFrame:
        metrics = self.logged_model.metrics if self.logged_model else []
        frame = pd.DataFrame(
            [(m.key, m.value, m.step, m.dataset) for m in metrics], columns=LOGGED_METRIC_COLUMNS
        )
        # `mlflow.evaluate` logs a metric to the model once per call: the latest one counts.
        return frame.drop_duplicates(["metric", "step", "dataset"], keep="last").reset_index(
            drop=True
        )

    @property
    def logged_model_params(self) -> pd.DataFrame:
        params = self.logged_model.params if self.logged_model else {}
        return pd.DataFrame(sorted(params.items()), columns=["param", "value"])


def version_lineage(registry: Registry, model: str, version: str) -> Lineage:
    info = registry.get_version(model, version)
    logged_model, problem = _logged_model(registry, info)
    if not info.run_id:
        empty = pd.DataFrame(columns=DATASET_COLUMNS)
        return Lineage(info, None, None, empty, [], logged_model, problem)
    run = registry.get_run(info.run_id)
    experiment = next(
        (e.name for e in registry.list_experiments() if e.experiment_id == run.experiment_id),
        None,
    )
    datasets = pd.DataFrame(
        [
            {
                "context": d.context,
                "name": d.name,
                "digest": d.digest,
                "source_type": d.source_type,
                "source": readable_source(d.source_type, d.source),
            }
            for d in run.datasets
        ],
        columns=DATASET_COLUMNS,
    )
    artifacts = registry.list_artifacts(run.run_id)
    return Lineage(info, run, experiment, datasets, artifacts, logged_model, problem)


def readable_source(source_type: str, source: str) -> str:
    """Where a logged dataset came from, as a person reads it: MLflow stores a JSON document
    (`{"uri": ...}`, `{"url": ...}`, or the code run's tags for in-memory frames)."""
    try:
        document = json.loads(source)
    except (TypeError, ValueError):
        return str(source)
    if not isinstance(document, dict):
        return str(source)
    for key in ("uri", "url", "path", "table_name", "location"):
        if isinstance(document.get(key), str):
            return document[key]
    tags = document.get("tags")
    if source_type == "code" and isinstance(tags, dict):
        script = tags.get("mlflow.source.name") or "unknown script"
        return f"in memory, logged by {script}"
    return json.dumps(document, sort_keys=True)[:300]


def _logged_model(
    registry: Registry, version: VersionInfo
) -> tuple[LoggedModelInfo | None, str | None]:
    if version.logged_model_id is None:
        return None, None
    try:
        return registry.logged_model(version.logged_model_id), None
    except NotFound as exc:
        return None, f"The logged model {version.logged_model_id} cannot be read: {exc}"

"""Read access to MLflow tracking and the model registry, as typed values and DataFrames.

Every call goes through `Registry`, which turns MLflow's and the network's exceptions into
`RegistryUnavailable` / `NotFound` with a message a person can act on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException, RestException
from requests.exceptions import RequestException

from mlops_core.errors import InvalidInput, NotFound, RegistryUnavailable
from mlops_core.policy import Policy, stage_of
from mlops_core.redaction import redact

# Without these MLflow retries an unreachable server for minutes before failing.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# Download progress bars would fill the panel's server log with one bar per artifact read.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_ALIAS = "champion"
ALIAS_CHANGED_TAG = "mlops.alias_changed_at."
T = TypeVar("T")


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class ExperimentInfo:
    experiment_id: str
    name: str
    artifact_location: str
    tags: dict[str, str]


@dataclass(frozen=True)
class VersionInfo:
    model_name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created_at: datetime | None
    author: str | None
    description: str
    tags: dict[str, str]
    source: str
    status: str
    # The registry stage (Production, Staging, Archived, None) of stage-based registries.
    stage: str = "None"


@dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]
    n_versions: int
    last_updated: datetime | None
    champion: VersionInfo | None
    champion_changed_at: datetime | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    # The alias or stage:<Stage> the policy serves the model from; None when it names none.
    target: str | None = None
    stages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInput:
    name: str
    digest: str
    context: str | None
    source_type: str
    source: str
    profile: str | None


@dataclass(frozen=True)
class RunDetail:
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    user: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    datasets: list[DatasetInput]


@dataclass(frozen=True)
class RunPage:
    runs: pd.DataFrame
    next_page_token: str | None


def mlflow_error_message(exc: Exception, uri: str) -> Exception:
    """A core error with a message for a person, credentials in the URI or reply hidden."""
    uri = redact(uri)
    if isinstance(exc, RequestException) or (
        isinstance(exc, MlflowException) and "Max retries exceeded" in str(exc)
    ):
        return RegistryUnavailable(
            f"Cannot reach the MLflow tracking server at {uri}. Is it running, and is "
            "MLFLOW_TRACKING_URI right?"
        )
    if isinstance(exc, MlflowException):
        code = getattr(exc, "error_code", "")
        message = redact(exc.message if hasattr(exc, "message") else str(exc))
        if code == "RESOURCE_DOES_NOT_EXIST":
            return NotFound(message)
        if code == "INVALID_PARAMETER_VALUE":
            return InvalidInput(message)
        return RegistryUnavailable(f"MLflow at {uri} answered with an error: {message}")
    return exc


class Registry:
    """A thin, typed facade over one MLflow tracking + registry location."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)

    @contextmanager
    def _calling(self) -> Iterator[None]:
        try:
            yield
        except (MlflowException, RestException, RequestException) as exc:
            raise mlflow_error_message(exc, self.tracking_uri) from None

    def _call(self, fn: Callable[[], T]) -> T:
        with self._calling():
            return fn()

    def ping(self) -> None:
        """Raise RegistryUnavailable unless the tracking store answers."""
        self._call(lambda: self.client.search_experiments(max_results=1))

    def has_models(self) -> bool:
        return bool(self._call(lambda: self.client.search_registered_models(max_results=1)))

    # Experiments and runs

    def list_experiments(self) -> list[ExperimentInfo]:
        experiments = []
        token = None
        while True:
            page = self._call(
                lambda t=token: self.client.search_experiments(max_results=200, page_token=t)
            )
            experiments += [
                ExperimentInfo(e.experiment_id, e.name, e.artifact_location, dict(e.tags))
                for e in page
            ]
            token = page.token
            if not token:
                return sorted(experiments, key=lambda e: e.name)

    def experiment_by_name(self, name: str) -> ExperimentInfo | None:
        found = self._call(lambda: self.client.get_experiment_by_name(name))
        if found is None:
            return None
        return ExperimentInfo(found.experiment_id, found.name, found.artifact_location, found.tags)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of runs, paginated by the server: never loads a whole experiment."""
        page = self._call(
            lambda: self.client.search_runs(
                experiment_ids,
                filter_string=filter_string,
                max_results=page_size,
                order_by=order_by,
                page_token=page_token,
            )
        )
        return RunPage(runs_frame(list(page)), page.token or None)

    def get_run(self, run_id: str) -> RunDetail:
        return run_detail(self._call(lambda: self.client.get_run(run_id)))

    def metric_history(self, run_id: str, key: str) -> pd.DataFrame:
        history = self._call(lambda: self.client.get_metric_history(run_id, key))
        return pd.DataFrame(
            [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in history],
            columns=["step", "value", "timestamp"],
        )

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """Every artifact file of a run, depth first, as paths relative to the run root."""
        files: list[str] = []
        for info in self._call(lambda: self.client.list_artifacts(run_id, path)):
            if info.is_dir:
                files += self.list_artifacts(run_id, info.path)
            else:
                files.append(info.path)
        return files

    # Registered models and versions

    def _registered_models(self) -> list[RegisteredModel]:
        models: list[RegisteredModel] = []
        token = None
        while True:
            page = self._call(
                lambda t=token: self.client.search_registered_models(max_results=100, page_token=t)
            )
            models += list(page)
            token = page.token
            if not token:
                return models

    def _model(self, name: str) -> RegisteredModel:
        return self._call(lambda: self.client.get_registered_model(name))

    def list_versions(self, name: str) -> list[VersionInfo]:
        """All versions of a model, newest first, with their aliases resolved.

        `search_model_versions` leaves `aliases` empty, so they come from the registered
        model's alias map instead.
        """
        aliases = self._model(name).aliases
        versions: list[ModelVersion] = []
        token = None
        escaped = name.replace("'", "\\'")
        while True:
            page = self._call(
                lambda t=token: self.client.search_model_versions(
                    f"name = '{escaped}'", max_results=200, page_token=t
                )
            )
            versions += list(page)
            token = page.token
            if not token:
                break
        infos = [version_info(v, aliases) for v in versions]
        return sorted(infos, key=lambda v: int(v.version), reverse=True)

    def get_version(self, name: str, version: str) -> VersionInfo:
        aliases = self._model(name).aliases
        found = self._call(lambda: self.client.get_model_version(name, version))
        return version_info(found, aliases)

    def version_by_alias(self, name: str, alias: str = DEFAULT_ALIAS) -> VersionInfo | None:
        aliases = self._model(name).aliases
        if alias not in aliases:
            return None
        return self.get_version(name, str(aliases[alias]))

    def version_at(self, name: str, target: str) -> VersionInfo | None:
        """The version an alias points at, or the newest version in a `stage:` target's stage."""
        stage = stage_of(target)
        if stage is None:
            return self.version_by_alias(name, target)
        in_stage = [v for v in self.list_versions(name) if v.stage.lower() == stage.lower()]
        return in_stage[0] if in_stage else None

    def serving_version(self, policy: Policy, name: str) -> VersionInfo | None:
        """The version behind the target the policy names for `name`; None without one."""
        target = policy.serving_target(name)
        return self.version_at(name, target) if target else None

    def list_models(
        self, target_of: Callable[[str], str | None] = lambda _name: None
    ) -> list[ModelSummary]:
        """Every registered model with the version its target (`target_of(name)`) serves;
        without one, no champion (the panel does not guess a model's serving alias)."""
        summaries = []
        for model in sorted(self._registered_models(), key=lambda m: m.name):
            versions = self.list_versions(model.name)
            target = target_of(model.name)
            champion = _serving(versions, target) if target else None
            metrics = self.get_run(champion.run_id).metrics if champion and champion.run_id else {}
            summaries.append(
                ModelSummary(
                    name=model.name,
                    description=model.description or "",
                    tags=dict(model.tags),
                    aliases={a: str(v) for a, v in model.aliases.items()},
                    n_versions=len(versions),
                    last_updated=ms_to_datetime(model.last_updated_timestamp),
                    champion=champion,
                    champion_changed_at=alias_changed_at(model, target) if target else None,
                    champion_metrics=metrics,
                    target=target,
                    stages={v.version: v.stage for v in versions if v.stage != "None"},
                )
            )
        return summaries

    def move_to(self, name: str, target: str, version: str) -> None:
        """Point an alias at `version`, or transition it into a stage (archiving the versions
        that were in it, as MLflow's `archive_existing_versions`), and record when."""
        stage = stage_of(target)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._calling():
            if stage is None:
                self.client.set_registered_model_alias(name, target, version)
            else:
                self.client.transition_model_version_stage(
                    name, version, stage, archive_existing_versions=True
                )
            self.client.set_registered_model_tag(name, _changed_tag(target), now)

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        with self._calling():
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version, key, value)


def _changed_tag(target: str) -> str:
    # MLflow tag keys take no colon.
    return ALIAS_CHANGED_TAG + target.replace(":", ".")


def _serving(versions: list[VersionInfo], target: str) -> VersionInfo | None:
    stage = stage_of(target)
    if stage is None:
        return next((v for v in versions if target in v.aliases), None)
    return next((v for v in versions if v.stage.lower() == stage.lower()), None)


def alias_changed_at(model: RegisteredModel, target: str) -> datetime | None:
    value = model.tags.get(_changed_tag(target))
    return datetime.fromisoformat(value) if value else None


def version_info(version: ModelVersion, aliases: dict[str, str]) -> VersionInfo:
    return VersionInfo(
        model_name=version.name,
        version=str(version.version),
        aliases=tuple(sorted(a for a, v in aliases.items() if str(v) == str(version.version))),
        run_id=version.run_id or None,
        created_at=ms_to_datetime(version.creation_timestamp),
        author=version.user_id or None,
        description=version.description or "",
        tags=dict(version.tags),
        source=version.source or "",
        status=str(version.status),
        stage=str(version.current_stage or "None"),
    )


def run_detail(run: Run) -> RunDetail:
    datasets = [
        DatasetInput(
            name=d.dataset.name,
            digest=d.dataset.digest,
            context=next((t.value for t in d.tags if t.key == "mlflow.data.context"), None),
            source_type=d.dataset.source_type,
            source=d.dataset.source,
            profile=d.dataset.profile,
        )
        for d in (run.inputs.dataset_inputs if run.inputs else [])
    ]
    return RunDetail(
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        start_time=ms_to_datetime(run.info.start_time),
        end_time=ms_to_datetime(run.info.end_time),
        user=run.info.user_id or None,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        datasets=datasets,
    )


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """Runs as rows: identity columns, then `metrics.*`, `params.*` and `tags.*` columns."""
    rows = []
    for run in runs:
        row: dict[str, object] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "start_time": ms_to_datetime(run.info.start_time),
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        tags = run.data.tags.items()
        row.update({f"tags.{k}": v for k, v in tags if not k.startswith("mlflow.")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "run_name", "experiment_id", "status", "start_time"])
    return frame

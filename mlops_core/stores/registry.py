"""Read access to MLflow tracking and the model registry, as typed values and DataFrames.

Every call goes through `Registry`, which turns MLflow's and the network's exceptions into
`RegistryUnavailable` / `NotFound` with a message a person can act on.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException, RestException
from mlflow.models import Model
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
NO_STAGE = "None"
PARENT_RUN_TAG = "mlflow.parentRunId"
# The system tags MLflow's own runs table offers; the other `mlflow.*` tags are bookkeeping.
SYSTEM_TAGS = (PARENT_RUN_TAG, "mlflow.user", "mlflow.source.name", "mlflow.runName")
TOP_LEVEL_FILTER = f"tags.`{PARENT_RUN_TAG}` IS NULL"
CHILD_FILTER = f"tags.`{PARENT_RUN_TAG}` IS NOT NULL"
# Counting children reads runs: at most this many, this many per request.
CHILD_SCAN_LIMIT, SCAN_PAGE = 5_000, 1_000
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
# `models:/m-<id>`: a version registered from an MLflow 3 logged model.
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]+)/?$")
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
    # MLflow's stage (None, Staging, Production, Archived): registries from before aliases.
    stage: str = NO_STAGE

    @property
    def logged_model_id(self) -> str | None:
        """The MLflow 3 logged model behind the version, whose files the run does not hold."""
        return logged_model_id(self.source)


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
    # Version numbers by stage, newest first, for the stages other than "None".
    stages: dict[str, list[str]] = field(default_factory=dict)


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
class LoggedMetric:
    key: str
    value: float
    step: int
    dataset: str | None


@dataclass(frozen=True)
class LoggedModelInfo:
    """An MLflow 3 logged model: the model's files, params and metrics live here, not on a run."""

    model_id: str
    name: str
    experiment_id: str
    source_run_id: str | None
    created_at: datetime | None
    status: str
    artifact_location: str
    # From the model's MLmodel file; None when that file could not be read.
    flavors: tuple[str, ...] | None
    has_signature: bool | None
    params: dict[str, str]
    metrics: list[LoggedMetric]
    tags: dict[str, str]
    artifacts: list[str]


@dataclass(frozen=True)
class RunPage:
    runs: pd.DataFrame
    next_page_token: str | None
    # True when the server could not leave child runs out and this page dropped them.
    top_level_on_client: bool = False


@dataclass(frozen=True)
class ChildCounts:
    counts: dict[str, int]
    # False when the scan stopped at its limit: the counts are then lower bounds.
    complete: bool


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


class _Answers:
    """The first answer to each question, shared by threads: a question asked again while
    its first asking is under way waits for that answer instead of asking MLflow twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, Future[Any]] = {}

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:
            answer = self._answers.get(key)
            asking = answer is None
            if asking:
                answer = self._answers[key] = Future()
        if asking:
            try:
                answer.set_result(load())
            except BaseException as exc:
                answer.set_exception(exc)
        return answer.result()


class Registry:
    """A thin, typed facade over one MLflow tracking + registry location."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._answers: _Answers | None = None

    def reading_once(self) -> Registry:
        """This registry for one evaluation that asks the same things from several places
        (the gates of a decision): each read is made once and its answer reused, so every
        gate sees the same registry state. Writes go through as usual; keep the view no
        longer than the evaluation, or it shows a registry that has moved on."""
        view = copy.copy(self)
        view._answers = _Answers()
        return view

    def once(self, key: Hashable, load: Callable[[], T]) -> T:
        """`load()`; in a `reading_once` view, its first answer for `key`."""
        if self._answers is None:
            return load()
        return self._answers.get(key, load)

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
        top_level_only: bool = False,
    ) -> RunPage:
        """One page of runs, paginated by the server: never loads a whole experiment.

        `top_level_only` leaves out child runs (those with a `mlflow.parentRunId` tag) on
        the server, with `IS NULL`. Tracking servers older than that filter (MLflow before
        mlflow/mlflow#21283, 2026) refuse it; the page's child runs are then dropped here,
        so such a page may hold fewer runs than `page_size` (`RunPage.top_level_on_client`).
        """
        if not top_level_only:
            return self._runs_page(experiment_ids, filter_string, order_by, page_size, page_token)
        try:
            return self._runs_page(
                experiment_ids,
                joined_filter(filter_string, TOP_LEVEL_FILTER),
                order_by,
                page_size,
                page_token,
            )
        except InvalidInput:
            # Raises again, with MLflow's reason, when the person's own filter is at fault.
            page = self._runs_page(experiment_ids, filter_string, order_by, page_size, page_token)
            return RunPage(top_level_rows(page.runs), page.next_page_token, True)

    def _runs_page(
        self,
        experiment_ids: list[str],
        filter_string: str,
        order_by: list[str] | None,
        page_size: int,
        page_token: str | None,
    ) -> RunPage:
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

    def child_runs(
        self,
        experiment_ids: list[str],
        parent_run_id: str,
        order_by: list[str] | None = None,
        limit: int = 100,
    ) -> RunPage:
        """The first `limit` children of a run, in `order_by`."""
        if not _RUN_ID.match(parent_run_id):
            raise InvalidInput(f"{parent_run_id!r} is not a run ID.")
        children = f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'"
        return self._runs_page(experiment_ids, children, order_by, limit, None)

    def child_counts(
        self, experiment_ids: list[str], started_from: datetime, limit: int = CHILD_SCAN_LIMIT
    ) -> ChildCounts:
        """How many child runs each parent has, counting children started from `started_from`.

        MLflow cannot count or group, so this reads child runs, at most `limit` of them,
        newest first. A child starts after its parent, so for a page of runs the oldest
        start on the page bounds the scan; past `limit` the counts are lower bounds.
        """
        since = f"attributes.start_time >= {int(started_from.timestamp() * 1000)}"
        try:
            runs, complete = self._scan(experiment_ids, joined_filter(since, CHILD_FILTER), limit)
        except InvalidInput:  # a server without IS NOT NULL: the top-level runs are read too
            runs, complete = self._scan(experiment_ids, since, limit)
        parents = Counter(run.data.tags.get(PARENT_RUN_TAG) for run in runs)
        parents.pop(None, None)
        return ChildCounts(dict(parents), complete)

    def _scan(
        self, experiment_ids: list[str], filter_string: str, limit: int
    ) -> tuple[list[Run], bool]:
        """Up to `limit` runs, newest first; and whether that was all of them."""
        runs: list[Run] = []
        token = None
        while len(runs) < limit:
            size = min(SCAN_PAGE, limit - len(runs))
            page = self._call(
                lambda t=token, n=size: self.client.search_runs(
                    experiment_ids, filter_string=filter_string, max_results=n, page_token=t
                )
            )
            runs += list(page)
            token = page.token
            if not token:
                return runs, True
        return runs, False

    def get_run(self, run_id: str) -> RunDetail:
        return self.once(
            ("run", run_id), lambda: run_detail(self._call(lambda: self.client.get_run(run_id)))
        )

    def metric_history(self, run_id: str, key: str) -> pd.DataFrame:
        history = self._call(lambda: self.client.get_metric_history(run_id, key))
        return pd.DataFrame(
            [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in history],
            columns=["step", "value", "timestamp"],
        )

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """Every artifact file of a run, depth first, as paths relative to the run root."""
        files = self.once(("artifacts", run_id, path), lambda: self._artifact_files(run_id, path))
        return list(files)

    def _artifact_files(self, run_id: str, path: str | None) -> list[str]:
        files: list[str] = []
        for info in self._call(lambda: self.client.list_artifacts(run_id, path)):
            if info.is_dir:
                files += self.list_artifacts(run_id, info.path)
            else:
                files.append(info.path)
        return files

    # MLflow 3 logged models

    def logged_model(self, model_id: str) -> LoggedModelInfo:
        model = self._call(lambda: self.client.get_logged_model(model_id))
        artifacts = [
            info.path
            for info in self._call(lambda: self.client.list_logged_model_artifacts(model_id))
        ]
        flavors, has_signature = self._mlmodel(model.artifact_location)
        return LoggedModelInfo(
            model_id=model.model_id,
            name=model.name,
            experiment_id=model.experiment_id,
            source_run_id=model.source_run_id or None,
            created_at=ms_to_datetime(model.creation_timestamp),
            status=str(getattr(model.status, "value", model.status)),
            artifact_location=model.artifact_location,
            flavors=flavors,
            has_signature=has_signature,
            params=dict(model.params or {}),
            metrics=[
                LoggedMetric(m.key, m.value, m.step, m.dataset_name) for m in model.metrics or []
            ],
            tags=dict(model.tags or {}),
            artifacts=artifacts,
        )

    def _mlmodel(self, artifact_location: str) -> tuple[tuple[str, ...] | None, bool | None]:
        """The flavors and whether a signature is logged, from the model's MLmodel file.

        Only that small file is downloaded. A store whose files are gone or unreadable still
        shows the rest of the lineage, so a failure here is "unknown", not an error.
        """
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{artifact_location.rstrip('/')}/MLmodel",
                    dst_path=folder,
                    tracking_uri=self.tracking_uri,
                )
                mlmodel = Model.load(path)
            except (MlflowException, RequestException, OSError, ValueError):
                return None, None
        return tuple(sorted(mlmodel.flavors)), mlmodel.signature is not None

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

    def model_names(self) -> list[str]:
        """The registered models' names, sorted."""
        return sorted(model.name for model in self._registered_models())

    def _model(self, name: str) -> RegisteredModel:
        return self.once(
            ("model", name), lambda: self._call(lambda: self.client.get_registered_model(name))
        )

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
        found = self.once(
            ("version", name, version),
            lambda: self._call(lambda: self.client.get_model_version(name, version)),
        )
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
        return version_serving(self.list_versions(name), target)

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
            champion = version_serving(versions, target) if target else None
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
                    stages=versions_by_stage(versions),
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

    def aliases_and_tags(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        """The registered model's aliases (alias -> version) and tags, read at once."""
        model = self._model(name)
        return {a: str(v) for a, v in model.aliases.items()}, dict(model.tags)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._calling():
            self.client.set_registered_model_tag(name, key, value)

    def delete_model_tag(self, name: str, key: str) -> None:
        with self._calling():
            self.client.delete_registered_model_tag(name, key)

    def delete_alias(self, name: str, alias: str) -> None:
        with self._calling():
            self.client.delete_registered_model_alias(name, alias)


def _changed_tag(target: str) -> str:
    # MLflow tag keys take no colon.
    return ALIAS_CHANGED_TAG + target.replace(":", ".")


def version_serving(versions: list[VersionInfo], target: str) -> VersionInfo | None:
    """Among `versions` (newest first), the one an alias points at, or the newest in a
    `stage:` target's stage."""
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
        stage=version.current_stage or NO_STAGE,
    )


def versions_by_stage(versions: list[VersionInfo]) -> dict[str, list[str]]:
    """Version numbers under each stage other than "None", in the order given."""
    stages: dict[str, list[str]] = {}
    for version in versions:
        if version.stage != NO_STAGE:
            stages.setdefault(version.stage, []).append(version.version)
    return stages


def stages_text(stages: dict[str, list[str]]) -> str:
    """ "Production: v1 · Staging: v2", Production first as MLflow's UI orders them."""
    order = ["Production", "Staging", "Archived"]
    ranked = sorted(stages, key=lambda s: (order.index(s) if s in order else len(order), s))
    return " · ".join(f"{s}: " + ", ".join(f"v{v}" for v in stages[s]) for s in ranked)


def logged_model_id(source: str) -> str | None:
    found = _LOGGED_MODEL_SOURCE.match(source or "")
    return found.group(1) if found else None


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


def joined_filter(*parts: str) -> str:
    """MLflow filters joined with `and` (its syntax has no parentheses or `or`)."""
    return " and ".join(part for part in parts if part.strip())


def top_level_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of a runs frame that are not children of another run."""
    column = f"tags.{PARENT_RUN_TAG}"
    if column not in runs.columns:
        return runs
    return runs[runs[column].isna()].reset_index(drop=True)


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
        row.update(
            {f"tags.{k}": v for k, v in tags if not k.startswith("mlflow.") or k in SYSTEM_TAGS}
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "run_name", "experiment_id", "status", "start_time"])
    return frame

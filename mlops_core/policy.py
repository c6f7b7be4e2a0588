"""The promotion policy: a TOML file (MLOPS_POLICY_FILE) of per-model gates and data sources.

An invalid file is rejected at load with a message that names the key and the problem.
A model is *covered* when the file has a `[models."name"]` table for it, or states a
`[defaults]` table (which then applies to every model). A model no policy covers can be
looked at but not promoted: its gates report `not_configured`, and a request needs the
promotion target (an alias, or `stage:<Stage>`) that the policy names.

The file is re-read when it changes on disk (mtime and size), without a restart, and each
load carries the sha256 of its bytes, which requests and decisions freeze.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_core.errors import ConfigError
from mlops_core.rollout_policy import RolloutPlan

# Which way a metric is better: the one place every view, the CLI, gates and the decision
# record ask, so none of them can rank a disparity "higher is better" again.
Direction = Literal["higher", "lower", "closer_to_one"]
Task = Literal["classification", "regression"]
# Regression errors by their usual short names; MLflow evaluate's long names
# (mean_absolute_percentage_error, root_mean_squared_error, max_error) end in "_error".
LOWER_IS_BETTER = (
    "loss",
    "log_loss",
    "error",
    "mae",
    "rmse",
    "mse",
    "mape",
    "smape",
    "msle",
    "rmsle",
    "disparity",
    "brier_score",
    "ece",
)
LOWER_IS_BETTER_SUFFIXES = (
    "_loss",
    "_error",
    "_mae",
    "_rmse",
    "_mse",
    "_mape",
    "_difference",
    "_gap",
    "_disparity",
)
# A ratio between groups is fair at 1 whichever group is on top.
PARITY_WORDS = ("parity", "disparity", "fairness", "odds", "opportunity", "impact")
CLASSIFICATION_FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
# What a regressor's fairness compares between groups, each as the largest difference
# (a maximum in the policy) and as min / max over groups (a minimum; 1.0 is parity).
REGRESSION_GROUP_METRICS = ("mean_prediction", "mean_label", "mae", "rmse")
REGRESSION_FAIRNESS_METRICS = tuple(
    f"{metric}_{kind}" for metric in REGRESSION_GROUP_METRICS for kind in ("difference", "ratio")
)
FAIRNESS_METRICS = CLASSIFICATION_FAIRNESS_METRICS + REGRESSION_FAIRNESS_METRICS
FAIRNESS_RATIOS = frozenset(m for m in FAIRNESS_METRICS if m.endswith("_ratio"))
BOOKKEEPING_COLUMNS = ["timestamp", "model", "model_version", "score", "prediction", "label"]
EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "policy.example.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FairnessPolicy(_Strict):
    sensitive_features: list[str] = Field(default_factory=lambda: ["gender"])
    min_group_size: int = Field(50, ge=1)
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    # The favourable class of the label and prediction columns (any two-valued labels).
    positive_label: int | bool | str = 1
    # A column of sample weights in the evaluation data; rates are then weighted rates.
    weight_column: str | None = None
    # A control column: disparities within each of its levels, the worst one gated.
    control_column: str | None = None
    # Differences are maxima; ratios (`demographic_parity_ratio`, `mae_ratio`, ...) are
    # minima (1.0 is parity). Classifier and regressor metrics: see FAIRNESS_METRICS.
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FAIRNESS_METRICS))
        if unknown:
            raise ValueError(f"unknown fairness metric(s) {unknown}; use {list(FAIRNESS_METRICS)}")
        return value


class DriftPolicy(_Strict):
    max_drift_share: float | None = Field(None, ge=0, le=1)
    column_drift_share: float = Field(0.5, gt=0, le=1)
    sample_size: int | None = Field(100_000, ge=100)
    window_days: int = Field(7, ge=1)
    method: str | None = None
    columns: list[str] | None = None


class ChecksPolicy(_Strict):
    """Gates on the stored behaviour checks of a version (`python -m mlops_core check`)."""

    max_latency_p99_ms: float | None = Field(None, gt=0)
    require_deterministic: bool = False
    # "predict": rows with missing values must be predicted; "clear_error": predicted or
    # refused with a clear error; "any": not gated.
    missing_values: Literal["predict", "clear_error", "any"] = "any"
    min_throughput_rows_per_s: float | None = Field(None, gt=0)
    max_model_size_mb: float | None = Field(None, gt=0)

    @property
    def gates_anything(self) -> bool:
        return (
            self.max_latency_p99_ms is not None
            or self.require_deterministic
            or self.missing_values != "any"
            or self.min_throughput_rows_per_s is not None
            or self.max_model_size_mb is not None
        )


# Quality metrics of live traffic once labels arrive (evidence.quality_metrics computes them).
CLASSIFICATION_QUALITY_METRICS = (
    "roc_auc",
    "pr_auc",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "log_loss",
    "brier_score",
    "ece",
)
REGRESSION_QUALITY_METRICS = ("rmse", "mae", "r2", "mean_error")
QUALITY_METRICS = CLASSIFICATION_QUALITY_METRICS + REGRESSION_QUALITY_METRICS


def _non_negative_tolerances(value: dict[str, float]) -> dict[str, float]:
    negative = [k for k, v in value.items() if v < 0]
    if negative:
        raise ValueError(f"tolerances must be >= 0, got a negative one for {negative}")
    return value


def _known_quality_metrics(value: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(value) - set(QUALITY_METRICS))
    if unknown:
        raise ValueError(f"unknown quality metric(s) {unknown}; use {list(QUALITY_METRICS)}")
    return value


class MonitoringPolicy(_Strict):
    """Quality of the served versions on the inference log, per window, once labels arrive."""

    window_days: int = Field(7, ge=1)
    # Labels of a window are complete this long after it ends; until then it is "pending".
    label_delay_days: float = Field(14, ge=0)
    min_label_coverage: float = Field(0.5, ge=0, le=1)
    min_labelled_rows: int = Field(200, ge=1)
    # Floors (ceilings for lower-is-better metrics: log_loss, brier_score, ece, rmse, mae).
    min_metrics: dict[str, float] = Field(default_factory=dict)
    # How much worse than the version's own offline evaluation, in the metric's units.
    max_degradation: dict[str, float] = Field(default_factory=dict)
    # The column naming the version that scored a row.
    version_column: str = "model_version"
    positive_label: int | bool | str = 1
    # Rows without a prediction column are predicted positive at this score.
    decision_threshold: float = Field(0.5, gt=0, lt=1)

    _metrics = field_validator("min_metrics", "max_degradation")(_known_quality_metrics)
    _non_negative = field_validator("max_degradation")(_non_negative_tolerances)


class LiveComparisonPolicy(_Strict):
    """The `live_comparison` gate: the candidate against the champion on live traffic."""

    metric: str = "roc_auc"
    confidence: float = Field(0.95, ge=0.5, lt=1)
    min_labelled_rows: int = Field(500, ge=1)
    # The largest drop of `metric` (metric units) the candidate may show at that confidence.
    max_drop: float = Field(0.0, ge=0)
    n_resamples: int = Field(1000, ge=100, le=20_000)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in QUALITY_METRICS:
            raise ValueError(f"unknown quality metric {value!r}; use {list(QUALITY_METRICS)}")
        return value


class DataSources(_Strict):
    """Where a model's data lives. `artifact:` paths are artifacts of the version's run.

    Unset reference and evaluation sets are found from what MLflow recorded with the version
    (its logged datasets, an `mlflow.evaluate` table, the demo's artifact paths): see
    `stores.data_discovery`.
    """

    reference: str | None = None
    evaluation: str | None = None
    current_url: str | None = None
    current_table: str | None = None
    current_query: str | None = None
    current_files: list[str] = Field(default_factory=list)
    timestamp_column: str = "timestamp"
    label_column: str = "label"
    score_column: str | None = "score"
    prediction_column: str | None = "prediction"
    # A row identifier (request id, customer id): bookkeeping, never a model input.
    id_column: str | None = None
    max_age_hours: float = Field(24 * 8, gt=0)
    ignore_columns: list[str] = Field(default_factory=lambda: list(BOOKKEEPING_COLUMNS))

    @property
    def bookkeeping_columns(self) -> list[str]:
        """Columns that are not model inputs: ignore_columns and the columns this section
        names for timestamp, label, score, prediction and id, whatever they are called."""
        named = [
            self.timestamp_column,
            self.label_column,
            self.score_column,
            self.prediction_column,
            self.id_column,
        ]
        return list(dict.fromkeys([*self.ignore_columns, *(c for c in named if c)]))

    @property
    def has_current(self) -> bool:
        return bool(self.current_table or self.current_query or self.current_files)

    def resolved_current_url(self, default: str) -> str:
        return os.path.expandvars(self.current_url) if self.current_url else default


STAGE_PREFIX = "stage:"
# The stages MLflow's registry knows; a promotion may move a version into these two.
PROMOTION_STAGES = ("Staging", "Production")
# Shown first when the policy names no key metric, in this order, when a version logs them.
KEY_METRIC_PREFERENCE = (
    "roc_auc",
    "f1",
    "accuracy",
    "r2",
    "rmse",
    "mae",
    "root_mean_squared_error",
    "mean_absolute_error",
    "r2_score",
    "accuracy_score",
)


def preferred_key_metric(available: Iterable[str]) -> str | None:
    """The first well-known metric among `available` (roc_auc, f1, accuracy, r2, rmse...)."""
    logged = set(available)
    return next((m for m in KEY_METRIC_PREFERENCE if m in logged), None)


def stage_of(target: str) -> str | None:
    """The stage a `stage:<Stage>` target names; None for an alias target."""
    return target[len(STAGE_PREFIX) :] if target.startswith(STAGE_PREFIX) else None


def describe_target(target: str) -> str:
    """'alias production' or 'stage Production', for messages and pages."""
    stage = stage_of(target)
    return f"stage {stage}" if stage else f"alias {target}"


class ModelPolicy(_Strict):
    alias: str = "champion"
    # What a promotion moves: an alias ("production") or a registry stage
    # ("stage:Production"). `alias` is the older spelling of an alias target.
    target: str | None = None
    # Classifier or regressor; unset, it is detected (evidence.task.detect_task).
    task: Task | None = None
    approvers_required: int = Field(1, ge=1, le=5)
    key_metric: str = "roc_auc"
    min_metrics: dict[str, float] = Field(default_factory=dict)
    # How much worse than the champion a candidate may be, in the metric's own units.
    max_regression: dict[str, float] = Field(default_factory=dict)
    require_schema_match: bool = False
    # Use evidence in MLflow that the panel did not store (no digest in its audit log), such
    # as reports written by CI; gates then name it as external evidence.
    accept_external_evidence: bool = False
    fairness: FairnessPolicy | None = None
    drift: DriftPolicy | None = None
    monitoring: MonitoringPolicy | None = None
    live_comparison: LiveComparisonPolicy | None = None
    checks: ChecksPolicy | None = None
    data: DataSources = Field(default_factory=DataSources)
    # A staged rollout instead of moving the target at once on approval.
    rollout: RolloutPlan | None = None

    @field_validator("target")
    @classmethod
    def _known_stage(cls, value: str | None) -> str | None:
        if value is None:
            return None
        stage = stage_of(value)
        if stage is None:
            if not value.strip():
                raise ValueError("an empty target; name an alias or stage:Production")
            return value
        for known in PROMOTION_STAGES:
            if stage.lower() == known.lower():
                return STAGE_PREFIX + known
        raise ValueError(
            f"unknown stage {stage!r}; use stage:{' or stage:'.join(PROMOTION_STAGES)}"
        )

    @property
    def serving_target(self) -> str | None:
        """The alias or stage a promotion moves, when this policy states one."""
        if self.target is not None:
            return self.target
        return self.alias if "alias" in self.model_fields_set else None

    @property
    def states_key_metric(self) -> bool:
        return "key_metric" in self.model_fields_set

    _non_negative = field_validator("max_regression")(_non_negative_tolerances)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SCHEDULE_OFF = "off"


def duration_seconds(text: str) -> int | None:
    """Seconds in "30s", "5m", "6h", "1d"; None for "off". ValueError otherwise."""
    value = text.strip().lower()
    if value == SCHEDULE_OFF:
        return None
    number, unit = value[:-1], value[-1:]
    if unit not in _DURATION_UNITS or not number.isdigit() or int(number) < 1:
        raise ValueError(f'{text!r} is not a duration; write 30s, 5m, 6h, 1d or "off"')
    return int(number) * _DURATION_UNITS[unit]


class Policy(_Strict):
    metric_direction: dict[str, Direction] = Field(default_factory=dict)
    # How often the worker runs each job ("5m", "1h", "off"); `worker.schedule` names the jobs.
    schedule: dict[str, str] = Field(default_factory=dict)
    defaults: ModelPolicy = Field(default_factory=ModelPolicy)
    models: dict[str, ModelPolicy] = Field(default_factory=dict)
    source: str = "built-in defaults"
    # Set by `parse_policy` from the file itself (_DERIVED), never read as keys.
    sha256: str | None = None
    states_defaults: bool = False
    text: str | None = Field(None, repr=False)

    def for_model(self, name: str) -> ModelPolicy:
        return self.models.get(name, self.defaults)

    @field_validator("schedule")
    @classmethod
    def _durations(cls, value: dict[str, str]) -> dict[str, str]:
        for job, every in value.items():
            try:
                duration_seconds(every)
            except ValueError as exc:
                raise ValueError(f"{job}: {exc}") from None
        return value

    def direction(self, metric: str) -> Direction:
        return metric_direction(metric, self.metric_direction)

    @property
    def is_configured(self) -> bool:
        return bool(self.models)

    def covers(self, name: str) -> bool:
        return name in self.models or self.states_defaults

    def serving_target(self, name: str) -> str | None:
        """The alias or stage the policy promotes `name` to; None when it names none."""
        return self.for_model(name).serving_target if self.covers(name) else None

    def rollout_plan(self, name: str) -> RolloutPlan | None:
        """The staged rollout the policy asks for `name`; None: approval moves the target."""
        return self.for_model(name).rollout if self.covers(name) else None

    def key_metric(self, name: str, available: list[str] | tuple[str, ...] = ()) -> str | None:
        """The policy's key metric for `name`, else the first well-known metric logged."""
        model_policy = self.for_model(name)
        if self.covers(name) and model_policy.states_key_metric:
            return model_policy.key_metric
        return preferred_key_metric(available)

    def missing_entry_help(self, name: str) -> str:
        """How to cover `name`: which file and which keys to add."""
        where = (
            self.source
            if self.sha256
            else "a policy file (MLOPS_POLICY_FILE, or policy.toml in the data folder)"
        )
        return (
            f'Add a [models."{name}"] table with target = "<alias>" (or "stage:Production") '
            f"and its thresholds to {where}; `python -m mlops_core policy init` drafts one."
        )


def metric_direction(metric: str, overrides: dict[str, Direction] | None = None) -> Direction:
    """Lower is better for losses, errors and between-group differences, closer to 1 for
    between-group ratios, higher for everything else; the policy's [metric_direction] wins."""
    if overrides and metric in overrides:
        return overrides[metric]
    # MLflow's custom evaluate metrics log aggregates as "<metric>/mean", "<metric>/p90".
    name = metric.lower().rsplit(".", 1)[-1].split("/", 1)[0]
    if name in LOWER_IS_BETTER or name.endswith(LOWER_IS_BETTER_SUFFIXES):
        return "lower"
    # Durations (autolog's mean_fit_time, latency) and spreads (std_test_score) are costs.
    if name.endswith(("_time", "_seconds", "latency")) or name.startswith("std_"):
        return "lower"
    if name in FAIRNESS_RATIOS:
        return "closer_to_one"
    if name.endswith("_ratio") and any(word in metric.lower() for word in PARITY_WORDS):
        return "closer_to_one"
    return "higher"


def goodness(value: float, direction: Direction) -> float:
    """A number that grows as `value` gets better in `direction`: compare these, not values."""
    if direction == "higher":
        return value
    if direction == "lower":
        return -value
    return -abs(1.0 - value)


_DERIVED = ("sha256", "states_defaults", "text")


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"])


def _merged(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def parse_policy(text: str, source: str) -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Policy file {source} is not valid TOML: {exc}") from None
    raw.setdefault("source", source)
    reserved = sorted(set(raw) & set(_DERIVED))
    if reserved:
        raise ConfigError(f"Policy file {source} is invalid: {reserved} are not policy keys.")
    defaults = raw.get("defaults", {})
    if isinstance(defaults, dict) and isinstance(raw.get("models"), dict):
        # A model's table only states what differs from [defaults].
        raw["models"] = {
            name: _merged(defaults, body) if isinstance(body, dict) else body
            for name, body in raw["models"].items()
        }
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Policy file {source} is invalid: {problems}") from None
    return policy.model_copy(
        update={
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "states_defaults": isinstance(raw.get("defaults"), dict),
            "text": text,
        }
    )


_LOADED: dict[Path, tuple[tuple[int, int], Policy]] = {}


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the built-in defaults when no policy file is configured.

    Parsed again only when the file's mtime or size changed, so an edit takes effect on the
    next read, without a restart."""
    if path is None:
        return Policy()
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _LOADED.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"MLOPS_POLICY_FILE: cannot read {path}: {exc.strerror}") from None
    policy = parse_policy(text, str(path))
    _LOADED[path] = (stamp, policy)
    return policy

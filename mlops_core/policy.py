"""The promotion policy: a TOML file (MLOPS_POLICY_FILE) of per-model gates and data sources.

An invalid file is rejected at load with a message that names the key and the problem.
A model the file does not list gets the defaults, which evaluate no metric thresholds.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_core.errors import ConfigError

# Which way a metric is better: the one place every view, the CLI, gates and the decision
# record ask, so none of them can rank a disparity "higher is better" again.
Direction = Literal["higher", "lower", "closer_to_one"]
LOWER_IS_BETTER = ("loss", "log_loss", "error", "mae", "rmse", "mse", "disparity")
LOWER_IS_BETTER_SUFFIXES = (
    "_loss",
    "_error",
    "_mae",
    "_rmse",
    "_mse",
    "_difference",
    "_gap",
    "_disparity",
)
# A ratio between groups is fair at 1 whichever group is on top.
PARITY_WORDS = ("parity", "disparity", "fairness", "odds", "opportunity", "impact")
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
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
    # Differences are maxima; `demographic_parity_ratio` is a minimum (1.0 is parity).
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
    max_age_hours: float = Field(24 * 8, gt=0)
    ignore_columns: list[str] = Field(default_factory=lambda: list(BOOKKEEPING_COLUMNS))

    @property
    def has_current(self) -> bool:
        return bool(self.current_table or self.current_query or self.current_files)

    def resolved_current_url(self, default: str) -> str:
        return os.path.expandvars(self.current_url) if self.current_url else default


class ModelPolicy(_Strict):
    alias: str = "champion"
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
    data: DataSources = Field(default_factory=DataSources)

    @field_validator("max_regression")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = [k for k, v in value.items() if v < 0]
        if negative:
            raise ValueError(f"tolerances must be >= 0, got a negative one for {negative}")
        return value


class Policy(_Strict):
    metric_direction: dict[str, Direction] = Field(default_factory=dict)
    defaults: ModelPolicy = Field(default_factory=ModelPolicy)
    models: dict[str, ModelPolicy] = Field(default_factory=dict)
    source: str = "built-in defaults"

    def for_model(self, name: str) -> ModelPolicy:
        return self.models.get(name, self.defaults)

    def direction(self, metric: str) -> Direction:
        return metric_direction(metric, self.metric_direction)

    @property
    def is_configured(self) -> bool:
        return bool(self.models)


def metric_direction(metric: str, overrides: dict[str, Direction] | None = None) -> Direction:
    """Lower is better for losses, errors and between-group differences, closer to 1 for
    between-group ratios, higher for everything else; the policy's [metric_direction] wins."""
    if overrides and metric in overrides:
        return overrides[metric]
    name = metric.lower().rsplit(".", 1)[-1]
    if name in LOWER_IS_BETTER or name.endswith(LOWER_IS_BETTER_SUFFIXES):
        return "lower"
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
    defaults = raw.get("defaults", {})
    if isinstance(defaults, dict) and isinstance(raw.get("models"), dict):
        # A model's table only states what differs from [defaults].
        raw["models"] = {
            name: _merged(defaults, body) if isinstance(body, dict) else body
            for name, body in raw["models"].items()
        }
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Policy file {source} is invalid: {problems}") from None


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the built-in defaults when no policy file is configured."""
    if path is None:
        return Policy()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"MLOPS_POLICY_FILE: cannot read {path}: {exc.strerror}") from None
    return parse_policy(text, str(path))

"""Fairness evidence of a model version: computed from its evaluation set with the policy's
settings, stored on the version's MLflow run, read back, and set against the champion's.

The registry itself carries the evidence: the artifact ``fairness/report.json`` (the whole
report, the source of truth), one metric per feature and disparity, searchable and plotted by
MLflow (``fairness.gender.demographic_parity_difference``), and the tag
``mlops.fairness.passed`` (true / false / none).

Stored evidence is used only when the panel produced it - its bytes match the digest the
panel recorded in the audit log when it stored them (`stores.evidence_digests`) - and when
it was computed with the settings the policy asks for now. Otherwise (a report copied from
another run, one written by someone else, thresholds changed, other sensitive features
chosen) the report is computed again from the evaluation set, and its source says why;
evidence that is not the panel's and cannot be recomputed is an error naming the artifact.
A policy with `accept_external_evidence` uses reports without a recorded digest (from CI,
say), and their source says "external evidence (not produced by the panel)".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

import pandas as pd
from mlflow.entities import Metric, RunTag

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, MlopsError, NotFound
from mlops_core.evidence.fairness import (
    INTERSECTION_SEPARATOR,
    MINIMUM_METRICS,
    DisparityCheck,
    FairnessConfig,
    FairnessReport,
    evaluate_fairness,
)
from mlops_core.evidence.stored_evidence import (
    has_artifact,
    stored_bytes,
    storing,
    trust_stored,
    upload_evidence,
)
from mlops_core.evidence.task import detect_task
from mlops_core.identity import Actor
from mlops_core.people.access import require_evidence_writer
from mlops_core.policy import (
    Direction,
    FairnessPolicy,
    ModelPolicy,
    Task,
    goodness,
    load_policy,
    metric_direction,
)
from mlops_core.stores.data_discovery import FoundData, find_data
from mlops_core.stores.registry import Registry, VersionInfo
from mlops_core.stores.sources import LoadedData

REPORT_DIR = "fairness"
REPORT_FILE = "report.json"
REPORT_ARTIFACT = f"{REPORT_DIR}/{REPORT_FILE}"
PASSED_TAG = "mlops.fairness.passed"
METRIC_PREFIX = "fairness."
WHAT = "fairness evidence"
# Columns with more distinct values than this are identifiers or measurements, not groups.
MAX_SENSITIVE_VALUES = 50
# Whole numbers are group codes (0/1 flags, bands) only when there are this few of them.
MAX_INTEGER_GROUPS = 10


class FairnessEvidence(NamedTuple):
    """A report and where it came from (stored on a run, or computed now from which data)."""

    report: FairnessReport
    source: str
    # How the model was taken for a classifier or a regressor (evidence.task).
    task_reason: str = ""


# --- settings and data ----------------------------------------------------------------------


def fairness_config(
    policy: ModelPolicy,
    sensitive: Sequence[str] | None = None,
    columns: Collection[str] | None = None,
    task: Task = "classification",
) -> FairnessConfig:
    """The policy's fairness settings for a `task` on data with these `columns`;
    `sensitive` overrides the gated features.

    For a classifier, the score with the policy's threshold is the decision the gate
    controls, so it is used whenever the data has it; otherwise the prediction column (the
    policy file cannot unset score_column, which defaults to "score"). For a regressor, the
    prediction column holds the predicted value.
    """
    fairness = policy.fairness or FairnessPolicy()
    data = policy.data
    if task == "regression":
        if data.prediction_column is None:
            raise InvalidInput(
                "The policy's data section sets no prediction_column, so a regressor's "
                "predicted values cannot be compared between groups."
            )
        return FairnessConfig(
            label=data.label_column,
            sensitive=list(sensitive) if sensitive else gated_features(policy),
            prediction=data.prediction_column,
            weight=fairness.weight_column,
            control=fairness.control_column,
            min_group_size=fairness.min_group_size,
            max_disparity=dict(fairness.thresholds),
            task="regression",
        )
    if data.score_column is None and data.prediction_column is None:
        raise InvalidInput(
            "The policy's data section sets neither score_column nor prediction_column, "
            "so there is no decision to evaluate for fairness."
        )
    use_score = data.score_column is not None and (
        columns is None or data.score_column in columns or data.prediction_column is None
    )
    return FairnessConfig(
        label=data.label_column,
        sensitive=list(sensitive) if sensitive else gated_features(policy),
        score=data.score_column if use_score else None,
        prediction=None if use_score else data.prediction_column,
        threshold=fairness.decision_threshold,
        positive_label=fairness.positive_label,
        weight=fairness.weight_column,
        control=fairness.control_column,
        min_group_size=fairness.min_group_size,
        max_disparity=dict(fairness.thresholds),
    )


def gated_features(policy: ModelPolicy) -> list[str]:
    """The sensitive features the policy's fairness thresholds apply to."""
    return list((policy.fairness or FairnessPolicy()).sensitive_features)


def model_policy(settings: Settings, model: str) -> ModelPolicy:
    return load_policy(settings.policy_file).for_model(model)


def resolve_version(registry: Registry, model: str, version: str) -> VersionInfo:
    """A version by number, or by alias (``champion``)."""
    if version.isdigit():
        return registry.get_version(model, version)
    found = registry.version_by_alias(model, version)
    if found is None:
        raise NotFound(f"Model {model!r} has no version {version!r} and no alias of that name.")
    return found


def load_evaluation_set(
    settings: Settings, registry: Registry, model: str, version: str
) -> LoadedData:
    found = resolve_version(registry, model, version)
    return find_data(registry, model_policy(settings, model), found, "evaluation").loaded


def with_found_columns(policy: ModelPolicy, found: FoundData) -> ModelPolicy:
    """The policy with the label and decision columns the data names itself: an
    `mlflow.evaluate` table holds its target and the model's outputs, whatever the policy's
    defaults call them."""
    if found.label_column is None or found.prediction_column is None:
        return policy
    data = policy.data.model_copy(
        update={
            "label_column": found.label_column,
            "prediction_column": found.prediction_column,
            "score_column": None,
        }
    )
    return policy.model_copy(update={"data": data})


def sensitive_options(frame: pd.DataFrame, policy: ModelPolicy) -> list[str]:
    """Columns that could split people into groups: the gated ones first, then any other
    column of groups (text, boolean, categorical, or a few whole numbers such as a 0/1
    flag), leaving out the label, score, prediction and the other bookkeeping columns."""
    bookkeeping = set(policy.data.bookkeeping_columns)
    options = [c for c in gated_features(policy) if c in frame.columns]
    for name in frame.columns:
        if name in bookkeeping or name in options or not _groups_people(frame[name]):
            continue
        options.append(str(name))
    return options


def _groups_people(column: pd.Series) -> bool:
    types = pd.api.types
    values = column.nunique(dropna=False)
    if types.is_bool_dtype(column) or isinstance(column.dtype, pd.CategoricalDtype):
        return values <= MAX_SENSITIVE_VALUES
    if types.is_integer_dtype(column):
        return values <= MAX_INTEGER_GROUPS
    if types.is_numeric_dtype(column) or types.is_datetime64_any_dtype(column):
        return False
    return values <= MAX_SENSITIVE_VALUES


def compute_fairness(
    loaded: LoadedData,
    policy: ModelPolicy,
    sensitive: Sequence[str] | None = None,
    task: Task = "classification",
) -> FairnessEvidence:
    config = fairness_config(policy, sensitive, loaded.frame.columns, task)
    report = evaluate_fairness(loaded.frame, config)
    return FairnessEvidence(report, f"computed now from {loaded.description} ({loaded.caption})")


# --- MLflow ---------------------------------------------------------------------------------


def metric_key(feature: str, metric: str) -> str:
    """``fairness.<feature>.<metric>``, the feature cut down to what MLflow accepts."""
    name = feature.replace(INTERSECTION_SEPARATOR, "_x_")
    return f"{METRIC_PREFIX}{re.sub(r'[^A-Za-z0-9_ -]', '_', name)}.{metric}"


def _passed_tag(passed: bool | None) -> str:
    return {True: "true", False: "false", None: "none"}[passed]


def log_fairness_evidence(
    settings: Settings,
    registry: Registry,
    version: VersionInfo,
    report: FairnessReport,
    actor: Actor,
) -> None:
    """Store the report on the version's run: the artifact first, so a failed upload logs
    nothing, then the digest of its bytes in the audit log, then metrics and tag.

    Logging again replaces report.json and adds a new point to each metric.
    """
    data = json.dumps(report.to_dict(), indent=2, allow_nan=False).encode("utf-8")
    run_id = upload_evidence(settings, registry, version, REPORT_ARTIFACT, data, actor, WHAT)
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [
        Metric(metric_key(feature.name, metric), value, now, 0)
        for feature in report.features
        for metric in report.metrics
        if not math.isnan(value := feature.disparity(metric))
    ]
    with storing(registry, run_id, WHAT):
        registry.client.log_batch(
            run_id, metrics=metrics, tags=[RunTag(PASSED_TAG, _passed_tag(report.passed))]
        )


def has_stored_report(registry: Registry, run_id: str) -> bool:
    return has_artifact(registry, run_id, REPORT_ARTIFACT)


def _stored_bytes(registry: Registry, run_id: str) -> bytes | None:
    return stored_bytes(registry, run_id, REPORT_ARTIFACT, WHAT)


def _parse_report(data: bytes, run_id: str) -> FairnessReport:
    try:
        return FairnessReport.from_dict(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidInput) as exc:
        raise InvalidInput(
            f"The stored {REPORT_ARTIFACT} of run {run_id} cannot be read ({exc}); "
            "recompute it from the evaluation set."
        ) from None


def read_stored_report(registry: Registry, run_id: str) -> FairnessReport | None:
    """The report stored on the run as it is (its digest unchecked), or None."""
    data = _stored_bytes(registry, run_id)
    return None if data is None else _parse_report(data, run_id)


# --- evidence of a version ------------------------------------------------------------------


def _expected_config(
    stored: FairnessReport, policy: ModelPolicy, sensitive: Sequence[str] | None, task: Task
) -> FairnessConfig:
    """The config the policy asks for, on data with the decision column the report used."""
    decision = stored.config.score or stored.config.prediction
    return fairness_config(policy, sensitive, [decision] if decision else [], task)


class _StoredVerdict(NamedTuple):
    """Whether the evidence stored on a run can be used as it is, and if not why not."""

    evidence: FairnessEvidence | None = None
    why_not: str = ""
    # Not the panel's evidence (replaced, or written by someone else): never used.
    rejected: bool = False


def _stored_verdict(
    settings: Settings,
    registry: Registry,
    model: str,
    run_id: str,
    policy: ModelPolicy,
    sensitive: Sequence[str] | None,
    task: Task,
) -> _StoredVerdict:
    data = _stored_bytes(registry, run_id)
    if data is None:
        return _StoredVerdict(why_not="no evidence is stored on the run")
    trust = trust_stored(settings, policy, model, run_id, REPORT_ARTIFACT, data)
    if not trust.usable:
        return _StoredVerdict(why_not=trust.why_not, rejected=trust.rejected)
    stored = _parse_report(data, run_id)
    if stored.config != _expected_config(stored, policy, sensitive, task):
        return _StoredVerdict(why_not="the stored evidence was computed with other settings")
    return _StoredVerdict(FairnessEvidence(stored, trust.source))


def fairness_for_version(
    settings: Settings,
    registry: Registry,
    model: str,
    version: str,
    recompute: bool = False,
    sensitive: Sequence[str] | None = None,
) -> FairnessEvidence:
    """The version's fairness under the current policy: the stored evidence when it is the
    panel's (or accepted external evidence) and matches the policy's settings, unless
    `recompute`; else computed from the evaluation set."""
    policy = model_policy(settings, model)
    found = resolve_version(registry, model, version)
    detected = detect_task(registry, policy, model, found.version)
    task = detected.task
    verdict = _StoredVerdict()
    if not recompute and found.run_id is not None:
        verdict = _stored_verdict(settings, registry, model, found.run_id, policy, sensitive, task)
        if verdict.evidence is not None:
            return verdict.evidence._replace(task_reason=detected.summary)
    try:
        data = find_data(registry, policy, found, "evaluation")
    except MlopsError as exc:
        if not verdict.rejected:
            raise
        raise InvalidInput(
            f"The stored fairness evidence is not used: {verdict.why_not}. Nor can it be "
            f"recomputed: {exc}"
        ) from None
    evidence = compute_fairness(data.loaded, with_found_columns(policy, data), sensitive, task)
    return evidence._replace(
        source="; ".join(filter(None, [evidence.source, verdict.why_not])),
        task_reason=detected.summary,
    )


def record_fairness_evidence(
    settings: Settings, registry: Registry, model: str, version: str, actor: Actor
) -> FairnessEvidence:
    """Compute with the policy's settings and store the result on the version's run, its
    digest in the audit log under the actor's name (a role above viewer)."""
    require_evidence_writer(actor, "store fairness evidence in MLflow")
    found = resolve_version(registry, model, version)
    evidence = fairness_for_version(settings, registry, model, found.version, recompute=True)
    log_fairness_evidence(settings, registry, found, evidence.report, actor)
    return evidence


# --- status for the overview ----------------------------------------------------------------


def _excess(check: DisparityCheck) -> float:
    """How far past its threshold a disparity is (negative: within it)."""
    if check.metric in MINIMUM_METRICS:
        return check.threshold - check.value
    return check.value - check.threshold


def describe_check(feature: str, check: DisparityCheck) -> str:
    return f"{feature} {check.metric} {check.value:.3f} ({check.bound} {check.threshold:g})"


@dataclass(frozen=True)
class FairnessStatus:
    """The stored verdict of a version; `worst` is the check closest to (or furthest past)
    its threshold."""

    passed: bool | None
    worst_feature: str | None
    worst: DisparityCheck | None
    source: str
    has_evidence: bool

    @property
    def label(self) -> str:
        if not self.has_evidence:
            return "no evidence"
        return {True: "pass", False: "fail", None: "no verdict"}[self.passed]

    @property
    def summary(self) -> str:
        if self.worst is None or self.worst_feature is None:
            return self.label
        return f"{self.label}: {describe_check(self.worst_feature, self.worst)}"


def worst_check(report: FairnessReport) -> tuple[str, DisparityCheck] | None:
    evaluated = [
        (feature.name, check)
        for feature in report.features
        for check in feature.checks
        if check.passed is not None
    ]
    return max(evaluated, key=lambda item: _excess(item[1]), default=None)


def fairness_status(registry: Registry, model: str, version: str) -> FairnessStatus:
    """The verdict stored on the version's run, without touching the evaluation set (nor
    checking its digest: that is for the gates, see `fairness_for_version`)."""
    found = resolve_version(registry, model, version)
    report = read_stored_report(registry, found.run_id) if found.run_id else None
    if report is None:
        return FairnessStatus(
            None, None, None, f"no fairness evidence on {model} v{found.version}", False
        )
    worst = worst_check(report)
    return FairnessStatus(
        passed=report.passed,
        worst_feature=worst[0] if worst else None,
        worst=worst[1] if worst else None,
        source=f"{REPORT_ARTIFACT} of run {found.run_id}",
        has_evidence=True,
    )


# --- candidate versus champion --------------------------------------------------------------


@dataclass(frozen=True)
class DisparityDelta:
    """One disparity of one feature for both versions; delta is candidate minus champion."""

    feature: str
    metric: str
    candidate: float
    champion: float
    delta: float
    threshold: float | None
    bound: str
    candidate_passed: bool | None
    champion_passed: bool | None

    @property
    def less_fair(self) -> bool | None:
        """Whether the candidate is further from parity than the champion."""
        if math.isnan(self.delta):
            return None
        direction = metric_direction(self.metric)
        return goodness(self.candidate, direction) < goodness(self.champion, direction)


def compare_reports(candidate: FairnessReport, champion: FairnessReport) -> list[DisparityDelta]:
    """Every disparity of the candidate's features next to the champion's."""
    champion_features = {f.name: f for f in champion.features}
    rows = []
    for feature in candidate.features:
        other = champion_features.get(feature.name)
        candidate_checks = {c.metric: c for c in feature.checks}
        champion_checks = {c.metric: c for c in other.checks} if other else {}
        for metric in candidate.metrics:
            value = feature.disparity(metric)
            reference = other.disparity(metric) if other and metric in other.metrics else math.nan
            check = candidate_checks.get(metric)
            champion_check = champion_checks.get(metric)
            rows.append(
                DisparityDelta(
                    feature=feature.name,
                    metric=metric,
                    candidate=value,
                    champion=reference,
                    delta=value - reference,
                    threshold=check.threshold if check else None,
                    bound="min" if metric in MINIMUM_METRICS else "max",
                    candidate_passed=check.passed if check else None,
                    champion_passed=champion_check.passed if champion_check else None,
                )
            )
    return rows


@dataclass(frozen=True)
class FairnessComparison:
    model: str
    candidate_version: str
    champion_version: str
    candidate: FairnessEvidence
    champion: FairnessEvidence
    key_metric: str
    key_metric_direction: Direction
    candidate_key_metric: float | None
    champion_key_metric: float | None
    rows: list[DisparityDelta]

    @property
    def accuracy_change(self) -> str:
        """ "better", "worse" or "same" on the key metric, or "unknown"."""
        if self.candidate_key_metric is None or self.champion_key_metric is None:
            return "unknown"
        direction = self.key_metric_direction
        gain = goodness(self.candidate_key_metric, direction) - goodness(
            self.champion_key_metric, direction
        )
        return "better" if gain > 0 else "worse" if gain < 0 else "same"

    @property
    def more_accurate_but_less_fair(self) -> bool:
        """The trade-off a reviewer must not miss: better key metric, a failing disparity."""
        return self.accuracy_change == "better" and any(
            r.candidate_passed is False for r in self.rows
        )

    @property
    def headline(self) -> str:
        """One sentence: is the candidate more accurate, and is it less fair?"""
        parts = [f"v{self.candidate_version} against champion v{self.champion_version}:"]
        if self.accuracy_change != "unknown":
            parts.append(
                f"{self.key_metric} {self.candidate_key_metric:.4f} vs "
                f"{self.champion_key_metric:.4f} ({self.accuracy_change});"
            )
        verdicts = {True: "passes", False: "fails", None: "has no verdict"}
        parts.append(
            f"fairness {verdicts[self.candidate.report.passed]} "
            f"(champion {verdicts[self.champion.report.passed]})."
        )
        regressions = [r for r in self.rows if r.candidate_passed is False]
        if regressions:
            worst = max(regressions, key=lambda r: abs(r.delta) if not math.isnan(r.delta) else 0)
            parts.append(
                f"{worst.feature} {worst.metric}: {worst.candidate:.3f} vs {worst.champion:.3f} "
                f"({worst.bound} {worst.threshold:g})."
            )
        return " ".join(parts)


def _key_metric(registry: Registry, version: VersionInfo, metric: str) -> float | None:
    return registry.get_run(version.run_id).metrics.get(metric) if version.run_id else None


@dataclass(frozen=True)
class FairnessReview:
    """A version's evidence and, unless it is the champion (or there is none), the
    champion's next to it; `champion_problem` says why the champion could not be evaluated."""

    model: str
    version: str
    evidence: FairnessEvidence
    champion_version: str | None
    comparison: FairnessComparison | None
    champion_problem: str | None = None


def review_fairness(
    settings: Settings,
    registry: Registry,
    model: str,
    version: str,
    recompute: bool = False,
    sensitive: Sequence[str] | None = None,
) -> FairnessReview:
    """Both versions are evaluated the same way: stored or recomputed, same features."""
    full_policy = load_policy(settings.policy_file)
    policy = full_policy.for_model(model)
    candidate = resolve_version(registry, model, version)
    evidence = fairness_for_version(
        settings, registry, model, candidate.version, recompute, sensitive
    )
    champion = registry.serving_version(full_policy, model)
    review = FairnessReview(
        model=model,
        version=candidate.version,
        evidence=evidence,
        champion_version=champion.version if champion else None,
        comparison=None,
    )
    if champion is None or champion.version == candidate.version:
        return review
    try:
        champion_evidence = fairness_for_version(
            settings, registry, model, champion.version, recompute, sensitive
        )
    except MlopsError as exc:
        # The candidate's evidence still stands on its own.
        return replace(review, champion_problem=f"Champion v{champion.version}: {exc}")
    return replace(
        review,
        comparison=FairnessComparison(
            model=model,
            candidate_version=candidate.version,
            champion_version=champion.version,
            candidate=evidence,
            champion=champion_evidence,
            key_metric=policy.key_metric,
            key_metric_direction=full_policy.direction(policy.key_metric),
            candidate_key_metric=_key_metric(registry, candidate, policy.key_metric),
            champion_key_metric=_key_metric(registry, champion, policy.key_metric),
            rows=compare_reports(evidence.report, champion_evidence.report),
        ),
    )

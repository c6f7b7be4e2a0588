"""Promotion gates: every check of the policy for one (model, candidate version).

Each result says passed, failed or not evaluated (with the reason), the observed value,
the threshold and where the evidence came from. A gate whose evidence cannot be had - an
artifact that is missing, a data source that is not configured, a computation that
failed - is "not evaluated", never passed: for approval it blocks exactly like a
failure, and only an admin may override it (see `mlops_core.governance.promotion`).

Gates, in the order they are reported:
- `min <metric>`: the candidate's metric (from its run) is at least the minimum, or at
  most it for lower-is-better metrics (`comparison.metric_deltas` judges both).
- `regression <metric>`: the candidate is no worse than the champion beyond the tolerance.
- `fairness <feature> <metric>`: each disparity threshold of the policy, on the fairness
  evidence of the candidate (`fairness_evidence.fairness_for_version`: the report stored on
  its run when its digest matches the one the panel recorded and it matches the policy's
  settings, else computed from its evaluation set; evidence that is not the panel's and
  cannot be recomputed leaves the gate not evaluated, naming the artifact).
- `drift`: the share of drifted columns between the candidate's reference set and the
  latest `window_days` of current data is at most `max_drift_share`.
- `schema`: the latest current data matches the candidate's input signature.
- `live_comparison`: on live traffic the candidate is no worse than the champion beyond
  the policy's drop, at its confidence (`governance.live_gate`).
- `checks <measurement>`: each threshold of the policy's checks section on the behaviour
  checks stored for the candidate (`governance.checks_gate`); none stored, replaced, or a
  sandbox that did not complete leaves them not evaluated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from mlops_core.config import Settings
from mlops_core.errors import ConfigError, InvalidInput, MlopsError, NotFound, PolicyDataMissing
from mlops_core.evidence.comparison import TOLERANCE_SLACK, metric_deltas
from mlops_core.evidence.drift import DriftOptions, compute_drift
from mlops_core.evidence.fairness_evidence import fairness_for_version
from mlops_core.evidence.schema_check import check_schema, signature_inputs_for_version
from mlops_core.governance.checks_gate import CHECKS_KIND, checks_gates
from mlops_core.governance.live_gate import LIVE_KIND, live_comparison_gate
from mlops_core.policy import ModelPolicy, Policy, describe_target, load_policy
from mlops_core.stores.audit import json_safe
from mlops_core.stores.db import utcnow
from mlops_core.stores.model_data import load_reference
from mlops_core.stores.registry import Registry, RunDetail, VersionInfo
from mlops_core.stores.sources import as_loaded, load_file, load_sql_window, sql_time_bounds

Status = Literal["passed", "failed", "not_evaluated", "not_configured"]
PASSED: Status = "passed"
FAILED: Status = "failed"
NOT_EVALUATED: Status = "not_evaluated"
NOT_CONFIGURED: Status = "not_configured"
METRIC_KIND, REGRESSION_KIND, FAIRNESS_KIND = "metric", "regression", "fairness"
DRIFT_KIND, SCHEMA_KIND, POLICY_KIND = "drift", "schema", "policy"


@dataclass(frozen=True)
class GateResult:
    name: str
    kind: str
    status: Status
    observed: float | str | None
    threshold: float | str | None
    evidence: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "kind": self.kind,
                "status": self.status,
                "observed": self.observed,
                "threshold": self.threshold,
                "evidence": self.evidence,
                "reason": self.reason,
                "details": self.details,
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(
            name=data["name"],
            kind=data.get("kind", ""),
            status=data["status"],
            observed=data.get("observed"),
            threshold=data.get("threshold"),
            evidence=data.get("evidence", ""),
            reason=data.get("reason", ""),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class GateReport:
    model: str
    version: str
    # The alias or `stage:<Stage>` the policy promotes to; "" when it names none.
    alias: str
    champion_version: str | None
    evaluated_at: datetime
    policy_source: str
    results: list[GateResult]
    policy_sha256: str | None = None

    @property
    def blocking(self) -> list[GateResult]:
        """Gates that keep an approval from going through without an admin override."""
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def summary(self) -> str:
        return summarize(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "champion_version": self.champion_version,
            "evaluated_at": self.evaluated_at.isoformat(timespec="seconds"),
            "policy_source": self.policy_source,
            "policy_sha256": self.policy_sha256,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }


def summarize(results: list[GateResult]) -> str:
    """E.g. "7 passed, 1 failed, 1 not evaluated" (or "no gates configured")."""
    if not results:
        return "no gates configured"
    counts = {status: sum(r.status == status for r in results) for status in _STATUS_WORDS}
    return ", ".join(f"{n} {_STATUS_WORDS[s]}" for s, n in counts.items() if n)


_STATUS_WORDS: dict[Status, str] = {
    PASSED: "passed",
    FAILED: "failed",
    NOT_EVALUATED: "not evaluated",
    NOT_CONFIGURED: "not configured",
}


def results_from_json(data: list[dict[str, Any]] | None) -> list[GateResult]:
    return [GateResult.from_dict(item) for item in data or []]


@dataclass
class _Context:
    """What the gates of one evaluation share, loaded at most once."""

    settings: Settings
    registry: Registry
    policy: Policy
    model_policy: ModelPolicy
    target: str
    candidate: VersionInfo
    champion: VersionInfo | None
    candidate_run: RunDetail | None
    champion_run: RunDetail | None
    _current: tuple[pd.DataFrame, str] | None = None
    # Drift and schema both read the current window, from two gate threads.
    _current_lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> tuple[pd.DataFrame, str]:
        with self._current_lock:
            if self._current is None:
                self._current = _load_current(self)
            return self._current


def evaluate_gates(settings: Settings, registry: Registry, model: str, version: str) -> GateReport:
    """Evaluate every gate of the policy file; raises only when the version itself is
    unknown or the registry cannot be reached."""
    # The gates ask for the same versions, runs and model files; each is read once.
    registry = registry.reading_once()
    policy = load_policy(settings.policy_file)
    model_policy = policy.for_model(model)
    candidate = registry.get_version(model, str(version))
    target = policy.serving_target(model)
    if target is None:
        return _not_configured(policy, model, candidate.version)
    champion = registry.version_at(model, target)
    context = _Context(
        settings=settings,
        registry=registry,
        policy=policy,
        model_policy=model_policy,
        target=target,
        candidate=candidate,
        champion=champion,
        candidate_run=registry.get_run(candidate.run_id) if candidate.run_id else None,
        champion_run=registry.get_run(champion.run_id) if champion and champion.run_id else None,
    )
    results = _metric_gates(context) + _evidence_gates(context)
    return GateReport(
        model=model,
        version=candidate.version,
        alias=target,
        champion_version=champion.version if champion else None,
        evaluated_at=utcnow(),
        policy_source=policy.source,
        results=results,
        policy_sha256=policy.sha256,
    )


def _evidence_gates(context: _Context) -> list[GateResult]:
    """The gates that read data and stored evidence, in the documented order.

    They wait mostly on MLflow, artifact files and the data sources, so they are evaluated
    side by side: an approver waits for the slowest of them, not for their sum.
    """
    model_policy = context.model_policy
    wanted: list[tuple[str, str, Callable[[_Context], list[GateResult]], bool]] = [
        (
            "fairness",
            FAIRNESS_KIND,
            _fairness,
            model_policy.fairness is not None and bool(model_policy.fairness.thresholds),
        ),
        (
            "drift",
            DRIFT_KIND,
            _drift,
            model_policy.drift is not None and model_policy.drift.max_drift_share is not None,
        ),
        ("schema", SCHEMA_KIND, _schema, model_policy.require_schema_match),
        (
            "live_comparison",
            LIVE_KIND,
            live_comparison_gate,
            model_policy.live_comparison is not None,
        ),
        (
            "checks",
            CHECKS_KIND,
            checks_gates,
            model_policy.checks is not None and model_policy.checks.gates_anything,
        ),
    ]
    gates = [(name, kind, gate) for name, kind, gate, configured in wanted if configured]
    if not gates:
        return []
    with ThreadPoolExecutor(max_workers=len(gates), thread_name_prefix="gate") as pool:
        futures = [pool.submit(_guarded, name, kind, gate, context) for name, kind, gate in gates]
        return [result for future in futures for result in future.result()]


def _not_configured(policy: Policy, model: str, version: str) -> GateReport:
    """No policy covers the model, or it names no target: nothing may pass on "no gates"."""
    why = (
        f"the policy covers {model} but names no target (alias or stage) to promote to."
        if policy.covers(model)
        else f"no policy covers {model}."
    )
    result = GateResult(
        "policy",
        POLICY_KIND,
        NOT_CONFIGURED,
        None,
        None,
        policy.source,
        f"Not configured: {why} {policy.missing_entry_help(model)}",
    )
    return GateReport(
        model=model,
        version=version,
        alias="",
        champion_version=None,
        evaluated_at=utcnow(),
        policy_source=policy.source,
        results=[result],
        policy_sha256=policy.sha256,
    )


def _guarded(
    name: str, kind: str, gate: Callable[[_Context], list[GateResult]], context: _Context
) -> list[GateResult]:
    """A gate whose evidence cannot be had is reported as not evaluated, with why."""
    try:
        return gate(context)
    except PolicyDataMissing as exc:
        return [GateResult(name, kind, NOT_CONFIGURED, None, None, "", f"Not configured: {exc}")]
    except MlopsError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001
        # Fail closed: an unforeseen problem in the evidence blocks like a failure, and the
        # reviewer sees what went wrong instead of a page that crashed.
        reason = f"evaluating it failed ({type(exc).__name__}: {exc})."
    return [_not_evaluated(name, kind, reason, "")]


def _not_evaluated(name: str, kind: str, reason: str, evidence: str) -> GateResult:
    return GateResult(name, kind, NOT_EVALUATED, None, None, evidence, f"Not evaluated: {reason}")


def _run_evidence(version: VersionInfo, run: RunDetail | None) -> str:
    where = f"run {run.run_id}" if run else "no training run"
    return f"v{version.version} ({where})"


def _number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _metric_gates(context: _Context) -> list[GateResult]:
    """Minimums and regressions against the champion, judged by `comparison.metric_deltas`."""
    model_policy = context.model_policy
    deltas = metric_deltas(
        context.candidate_run.metrics if context.candidate_run else {},
        context.champion_run.metrics if context.champion_run else {},
        model_policy,
        context.policy.metric_direction,
    )
    rows = {row["metric"]: row for row in deltas.to_dict("records")}
    evidence = _run_evidence(context.candidate, context.candidate_run)
    results = []
    for metric, minimum in model_policy.min_metrics.items():
        row = rows[metric]
        observed = _number(row["candidate"])
        if observed is None:
            reason = f"the candidate's run has no {metric} metric."
            results.append(_not_evaluated(f"min {metric}", METRIC_KIND, reason, evidence))
            continue
        bound = "at most" if row["direction"] == "lower" else "at least"
        results.append(
            GateResult(
                f"min {metric}",
                METRIC_KIND,
                PASSED if row["meets_minimum"] else FAILED,
                observed,
                minimum,
                evidence,
                f"{metric} = {observed:.4f}, must be {bound} {minimum:g}.",
            )
        )
    for metric, tolerance in model_policy.max_regression.items():
        results.append(_regression(context, rows[metric], tolerance, evidence))
    return results


def _regression(
    context: _Context, row: dict[str, Any], tolerance: float, evidence: str
) -> GateResult:
    metric = row["metric"]
    name = f"regression {metric}"
    observed, baseline = _number(row["candidate"]), _number(row["champion"])
    if context.champion is None:
        # Nothing in production to regress from: said plainly, not silently skipped.
        reason = (
            f"Nothing at the {describe_target(context.target)} yet, so there is nothing to "
            "regress from."
        )
        return GateResult(name, REGRESSION_KIND, PASSED, observed, tolerance, evidence, reason)
    evidence += f" vs {_run_evidence(context.champion, context.champion_run)}"
    if observed is None or baseline is None:
        whose = "candidate's" if observed is None else "champion's"
        reason = f"the {whose} run has no {metric} metric."
        return _not_evaluated(name, REGRESSION_KIND, reason, evidence)
    # Positive = worse than the champion, in the metric's own units.
    regression = float(row["regression"])
    return GateResult(
        name,
        REGRESSION_KIND,
        PASSED if row["within_tolerance"] else FAILED,
        observed,
        tolerance,
        evidence,
        f"{metric} = {observed:.4f} vs champion v{context.champion.version} "
        f"{baseline:.4f}: {'worse' if regression > 0 else 'not worse'} by "
        f"{abs(regression):.4f} (tolerance {tolerance:g}).",
        {"champion_value": baseline, "delta": observed - baseline},
    )


def _reference(context: _Context) -> tuple[pd.DataFrame, str]:
    """The candidate's reference set (policy `data.reference`, else found in MLflow); drift
    samples it."""
    loaded = load_reference(context.registry, context.model_policy, context.candidate)
    return loaded.frame, f"{loaded.description} ({loaded.caption})"


def _fairness(context: _Context) -> list[GateResult]:
    """Each disparity threshold of the policy: stored evidence when it was computed with the
    policy's settings, otherwise computed now from the evaluation set."""
    evidence = fairness_for_version(
        context.settings, context.registry, context.candidate.model_name, context.candidate.version
    )
    results = []
    for feature in evidence.report.features:
        groups = {g.group: g.count for g in feature.groups}
        for check in feature.checks:
            name = f"fairness {feature.name} {check.metric}"
            if check.passed is None:
                reason = (
                    f"{check.metric} is undefined for {feature.name}: "
                    f"{feature.undefined_reason(check.metric)}."
                )
                results.append(
                    GateResult(
                        name,
                        FAIRNESS_KIND,
                        NOT_EVALUATED,
                        None,
                        check.threshold,
                        evidence.source,
                        f"Not evaluated: {reason}",
                        {"groups": groups},
                    )
                )
                continue
            bound = "at least" if check.bound == "min" else "at most"
            results.append(
                GateResult(
                    name,
                    FAIRNESS_KIND,
                    PASSED if check.passed else FAILED,
                    check.value,
                    check.threshold,
                    evidence.source,
                    f"{check.metric} by {feature.name} = {check.value:.4f}, must be "
                    f"{bound} {check.threshold:g}.",
                    {"groups": groups, "insufficient_groups": feature.insufficient_groups},
                )
            )
    return results


def _load_current(context: _Context) -> tuple[pd.DataFrame, str]:
    """The latest `window_days` of current data, ending at its newest row."""
    data = context.model_policy.data
    drift = context.model_policy.drift
    window = timedelta(days=drift.window_days if drift else 7)
    sample_size = drift.sample_size if drift else None
    if data.current_table or data.current_query:
        url = data.resolved_current_url(context.settings.inference_db_url)
        table, query = data.current_table, data.current_query
        bounds = sql_time_bounds(url, table, query, data.timestamp_column)
        if bounds is None:
            raise NotFound("the current data source has no rows yet.")
        loaded = load_sql_window(
            url,
            table=table,
            query=query,
            timestamp_column=data.timestamp_column,
            start=bounds[1] - window,
            sample_size=sample_size,
        )
        return loaded.frame, f"{loaded.description} ({loaded.caption})"
    if data.current_files:
        frame = pd.concat([load_file(path).frame for path in data.current_files], ignore_index=True)
        if data.timestamp_column in frame:
            stamps = pd.to_datetime(frame[data.timestamp_column], utc=True, format="ISO8601")
            frame = frame[stamps >= stamps.max() - window]
        loaded = as_loaded(frame, f"files {', '.join(data.current_files)}", sample_size)
        return loaded.frame, f"{loaded.description} ({loaded.caption})"
    raise ConfigError(
        "no current data source is configured for this model "
        "(policy data.current_table, current_query or current_files)."
    )


def _drift(context: _Context) -> list[GateResult]:
    drift = context.model_policy.drift
    data = context.model_policy.data
    assert drift is not None and drift.max_drift_share is not None  # checked by the caller
    current, current_evidence = context.current()
    reference, reference_evidence = _reference(context)
    ignored = set(data.ignore_columns) | {data.timestamp_column, data.label_column}
    columns = drift.columns or [c for c in reference if c in current and c not in ignored]
    if not columns:
        raise InvalidInput("the reference and the current data have no column in common.")
    result = compute_drift(
        reference,
        current,
        DriftOptions(
            columns=columns,
            method=drift.method,
            drift_share=drift.column_drift_share,
            sample_size=drift.sample_size,
        ),
    )
    ok = result.drift_share <= drift.max_drift_share + TOLERANCE_SLACK
    drifted = result.drifted_columns
    return [
        GateResult(
            "drift",
            DRIFT_KIND,
            PASSED if ok else FAILED,
            result.drift_share,
            drift.max_drift_share,
            f"current: {current_evidence}; reference: {reference_evidence}",
            f"{len(drifted)} of {len(result.columns)} columns drifted "
            f"({result.drift_share:.0%}), at most {drift.max_drift_share:.0%} allowed"
            + (f": {', '.join(drifted)}." if drifted else "."),
            {
                "drifted_columns": drifted,
                "columns": {
                    c.column: {"score": c.score, "drifted": c.drifted} for c in result.columns
                },
                "n_reference": result.n_reference,
                "n_current": result.n_current,
                "window_days": drift.window_days,
            },
        )
    ]


def _schema(context: _Context) -> list[GateResult]:
    data = context.model_policy.data
    current, evidence = context.current()
    inputs = signature_inputs_for_version(
        context.registry, context.candidate.model_name, context.candidate.version
    )
    report = check_schema(current, inputs, ignore=data.bookkeeping_columns)
    problems = [p.detail for p in report.problems]
    return [
        GateResult(
            "schema",
            SCHEMA_KIND,
            PASSED if report.ok else FAILED,
            f"{len(problems)} problem(s)",
            "0 problems",
            f"current: {evidence}; signature of v{context.candidate.version}",
            "The current data matches the model signature."
            if report.ok
            else " ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            {"problems": problems, "checked_columns": report.checked_columns},
        )
    ]

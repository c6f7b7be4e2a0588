"""The `checks` gates: the policy's `[models.X.checks]` thresholds on the stored behaviour
checks of the candidate (`evidence.behaviour.store.stored_check_report`).

One gate per configured threshold: `checks latency_p99_ms`, `checks deterministic`,
`checks missing_values`, `checks throughput_rows_per_s`, `checks model_size_mb`. They read
only stored evidence - the panel never runs a model to gate it - so without a usable
report (none stored, replaced, unreadable) or when its sandbox did not complete (timeout,
memory limit, the model failing to load), or when the report lacks the measurement, each
is not evaluated, which blocks. `python -m mlops_core check --log` stores the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_core.evidence.behaviour.report import CheckReport
from mlops_core.evidence.behaviour.store import stored_check_report
from mlops_core.policy import ChecksPolicy

if TYPE_CHECKING:
    from mlops_core.governance.gates import GateResult, _Context

CHECKS_KIND = "checks"
# How the missing-values verdicts rank: the policy's requirement is met at or above it.
_MISSING_RANK = {"unclear_failure": 0, "clear_error": 1, "predict": 2}


@dataclass(frozen=True)
class _Threshold:
    """One configured threshold: how to read the report, and whether a value meets it."""

    key: str
    threshold: float | str
    observe: Callable[[CheckReport], float | str | None]
    meets: Callable[[float | str], bool]
    rule: str

    @property
    def name(self) -> str:
        return f"checks {self.key}"


def _limit(
    key: str,
    limit: float,
    observe: Callable[[CheckReport], float | None],
    what: str,
    ceiling: bool,
) -> _Threshold:
    """A measurement that must stay at most (`ceiling`) or at least `limit`."""
    return _Threshold(
        key,
        limit,
        observe,
        (lambda v: float(v) <= limit) if ceiling else (lambda v: float(v) >= limit),
        what.format(f"{'at most' if ceiling else 'at least'} {limit:g}"),
    )


def _thresholds(policy: ChecksPolicy) -> list[_Threshold]:
    found = []
    if policy.max_latency_p99_ms is not None:
        found.append(
            _limit(
                "latency_p99_ms",
                policy.max_latency_p99_ms,
                lambda r: r.latency.p99_ms if r.latency else None,
                "single-row p99 latency must be {} ms",
                ceiling=True,
            )
        )
    if policy.require_deterministic:
        found.append(
            _Threshold(
                "deterministic",
                "deterministic",
                lambda r: None if r.deterministic is None else str(r.deterministic).lower(),
                lambda v: v == "true",
                "two predictions of the same rows must be identical",
            )
        )
    if policy.missing_values != "any":
        wanted = policy.missing_values
        found.append(
            _Threshold(
                "missing_values",
                wanted,
                lambda r: r.missing_values,
                lambda v: _MISSING_RANK.get(str(v), -1) >= _MISSING_RANK[wanted],
                "rows with missing values must be predicted"
                if wanted == "predict"
                else "rows with missing values must be predicted or refused with a clear error",
            )
        )
    if policy.min_throughput_rows_per_s is not None:
        found.append(
            _limit(
                "throughput_rows_per_s",
                policy.min_throughput_rows_per_s,
                lambda r: r.throughput_rows_per_s,
                "batch throughput must be {} rows/s",
                ceiling=False,
            )
        )
    if policy.max_model_size_mb is not None:
        found.append(
            _limit(
                "model_size_mb",
                policy.max_model_size_mb,
                lambda r: r.model_size_mb,
                "the model's files must take {} MB",
                ceiling=True,
            )
        )
    return found


def _shown(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def checks_gates(context: _Context) -> list[GateResult]:
    from mlops_core.governance.gates import (  # noqa: PLC0415  (gates imports this module)
        FAILED,
        NOT_EVALUATED,
        PASSED,
        GateResult,
    )

    policy = context.model_policy.checks
    assert policy is not None  # checked by the caller
    candidate = context.candidate
    stored = stored_check_report(context.settings, candidate.model_name, candidate.version)
    report = stored.report
    results = []
    for threshold in _thresholds(policy):
        if report is None:
            why = f"{stored.why_not}; run `python -m mlops_core check --log`."
        elif report.failure:
            why = f"the behaviour checks did not complete: {report.failure}."
        else:
            why = ""
        observed = None if report is None or report.failure else threshold.observe(report)
        if observed is None:
            why = why or f"the stored checks have no {threshold.key} measurement."
            results.append(
                GateResult(
                    threshold.name,
                    CHECKS_KIND,
                    NOT_EVALUATED,
                    None,
                    threshold.threshold,
                    stored.source,
                    f"Not evaluated: {why}",
                )
            )
            continue
        met = threshold.meets(observed)
        results.append(
            GateResult(
                threshold.name,
                CHECKS_KIND,
                PASSED if met else FAILED,
                observed,
                threshold.threshold,
                stored.source,
                f"{threshold.key} = {_shown(observed)}: {threshold.rule}.",
                {"checked_at": report.created_at},
            )
        )
    return results

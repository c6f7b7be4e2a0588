"""The `live_comparison` gate: the candidate against the champion on live traffic.

From the inference log's labelled rows where both versions scored the same requests
(shadow) or served their own share of them (split), `evidence.live_comparison` gives the
difference of the policy's metric with a confidence interval. The gate passes when, at the
policy's confidence, the candidate is at most `max_drop` worse than the champion (the
interval's worst end), and fails otherwise. Without live traffic of the candidate, with
fewer labelled rows than `min_labelled_rows`, or when the metric is undefined on them, it
is not evaluated: the rows still needed are in its evidence.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mlops_core.errors import MlopsError
from mlops_core.evidence.comparison import TOLERANCE_SLACK
from mlops_core.evidence.live_comparison import UNDEFINED, ComparisonConfig, compare_live
from mlops_core.evidence.quality_runs import quality_spec
from mlops_core.stores.model_data import load_current

if TYPE_CHECKING:
    from mlops_core.governance.gates import GateResult, _Context

LIVE_KIND = "live_comparison"
NAME = "live_comparison"


def live_comparison_gate(context: _Context) -> list[GateResult]:
    from mlops_core.governance.gates import FAILED, PASSED, GateResult, _not_evaluated

    policy = context.model_policy
    live = policy.live_comparison
    assert live is not None  # checked by the caller
    candidate = context.candidate.version
    if context.champion is None or context.champion.version == candidate:
        reason = (
            "Nothing is served yet, so there is nothing to compare with on live traffic."
            if context.champion is None
            else f"v{candidate} is the champion itself: nothing to compare with."
        )
        return [GateResult(NAME, LIVE_KIND, PASSED, None, live.max_drop, "", reason)]
    champion = context.champion.version
    spec = quality_spec(context.registry, policy, context.candidate.model_name, champion, candidate)
    columns = spec.columns
    loaded = load_current(context.settings, policy.data, columns_if_present=columns.names())
    evidence = f"{loaded.description} ({loaded.caption}), v{candidate} vs v{champion}"
    frame = loaded.frame
    columns.require(frame)
    versions = frame[columns.version].astype(str)
    if not (versions == candidate).any():
        reason = f"v{candidate} has no live traffic in the inference log (shadow or split)."
        return [_not_evaluated(NAME, LIVE_KIND, reason, evidence)]
    config = ComparisonConfig(
        champion=champion,
        challenger=candidate,
        task=spec.task,
        columns=columns,
        confidence=live.confidence,
        n_resamples=live.n_resamples,
    )
    try:
        comparison = compare_live(frame[versions.isin([champion, candidate])], config)
    except MlopsError as exc:
        return [_not_evaluated(NAME, LIVE_KIND, str(exc), evidence)]
    result = comparison.metric(live.metric)
    details = {
        "mode": comparison.mode,
        "metric": live.metric,
        "confidence": live.confidence,
        "champion_value": result.champion,
        "candidate_value": result.challenger,
        "difference": result.difference,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "method": result.method,
        "verdict": result.verdict,
        "p_value": result.p_value,
        "labelled_rows": comparison.n_compared,
        "min_labelled_rows": live.min_labelled_rows,
        "rows_needed": result.rows_needed,
    }
    evidence += f", {comparison.mode}"
    what = "labelled pairs" if comparison.mode == "shadow" else "labelled rows"
    if comparison.n_compared < live.min_labelled_rows:
        reason = (
            f"{comparison.n_compared} {what}, the policy needs {live.min_labelled_rows} "
            f"({live.min_labelled_rows - comparison.n_compared} more)."
        )
        return [replace(_not_evaluated(NAME, LIVE_KIND, reason, evidence), details=details)]
    if result.verdict == UNDEFINED:
        reason = f"{live.metric} is undefined on these rows (one class only?)."
        return [replace(_not_evaluated(NAME, LIVE_KIND, reason, evidence), details=details)]
    ok = result.gain_low >= -live.max_drop - TOLERANCE_SLACK
    interval = f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}]"
    return [
        GateResult(
            NAME,
            LIVE_KIND,
            PASSED if ok else FAILED,
            result.difference,
            live.max_drop,
            evidence,
            f"{live.metric} v{candidate} {result.challenger:.4f} vs v{champion} "
            f"{result.champion:.4f}: {result.difference:+.4f}, {live.confidence:.0%} interval "
            f"{interval} ({result.method}, {comparison.n_compared} {what}): {result.verdict}; "
            f"a drop of at most {live.max_drop:g} is allowed.",
            details,
        )
    ]

"""Evaluating one stage of a rollout: its minimums and guardrails over the inference log.

The rows are those the inference log holds for the champion and the challenger since the
stage started. A guardrail needs at least `MIN_ROWS` rows of each version it looks at to
judge (a rate over a handful of requests is noise); until then it is not evaluated, which
holds the stage without rolling it back. The outcome is "breach" when any guardrail is
breached, "ready" when every minimum is met and every guardrail passed, else "hold".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_core.errors import MlopsError
from mlops_core.evidence.drift import DriftOptions, compute_drift
from mlops_core.evidence.live_comparison import UNDEFINED, compare_live
from mlops_core.rollout.quality import QualityRule
from mlops_core.rollout_policy import Guardrails, RolloutStage

PASS, BREACH, NOT_EVALUATED = "pass", "breach", "not_evaluated"
HOLD, READY = "hold", "ready"
MIN_ROWS = 50
DRIFT_METHOD = "wasserstein"
QUALITY = "quality_vs_champion"


@dataclass(frozen=True)
class GuardrailCheck:
    name: str
    status: str  # pass | breach | not_evaluated
    observed: float | None
    threshold: float | None
    detail: str
    numbers: dict[str, Any] | None = None


@dataclass(frozen=True)
class MinimumCheck:
    name: str
    observed: float
    required: float

    @property
    def met(self) -> bool:
        return self.observed >= self.required


@dataclass(frozen=True)
class StageEvaluation:
    stage: str
    traffic: float
    outcome: str  # hold | ready | breach
    minimums: list[MinimumCheck]
    guardrails: list[GuardrailCheck]
    rows: dict[str, int]

    @property
    def breaches(self) -> list[GuardrailCheck]:
        return [g for g in self.guardrails if g.status == BREACH]

    @property
    def summary(self) -> str:
        if self.breaches:
            return "; ".join(f"{g.name} breached: {g.detail}" for g in self.breaches)
        waiting = [f"{m.name} {m.observed:g} of {m.required:g}" for m in self.minimums if not m.met]
        waiting += [
            f"{g.name} not evaluated ({g.detail})"
            for g in self.guardrails
            if g.status == NOT_EVALUATED
        ]
        if not waiting:
            return "ready: every minimum met, every guardrail holds"
        return "waiting: " + "; ".join(waiting)

    def evidence(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "traffic": self.traffic,
            "outcome": self.outcome,
            "rows": self.rows,
            "minimums": [{**asdict(m), "met": m.met} for m in self.minimums],
            "guardrails": [asdict(g) for g in self.guardrails],
        }

    @property
    def sha256(self) -> str:
        text = json.dumps(self.evidence(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StageRows:
    """The stage's inference-log rows of each version, and how long the stage has run."""

    champion: pd.DataFrame
    challenger: pd.DataFrame
    elapsed_minutes: float


def _errors(frame: pd.DataFrame) -> pd.Series:
    values = frame["error"]
    return values.notna() & (values.astype(str).str.strip() != "")


def _too_few(name: str, threshold: float | None, n: int, what: str = "rows") -> GuardrailCheck:
    return GuardrailCheck(
        name, NOT_EVALUATED, None, threshold, f"{n} challenger {what}, at least {MIN_ROWS} needed"
    )


def _missing(name: str, threshold: float | None, column: str) -> GuardrailCheck:
    return GuardrailCheck(
        name, NOT_EVALUATED, None, threshold, f"the inference log has no {column} column"
    )


def error_rate(rows: StageRows, limit: float) -> GuardrailCheck:
    name = "error_rate"
    if "error" not in rows.challenger:
        return _missing(name, limit, "error")
    n = len(rows.challenger)
    if n < MIN_ROWS:
        return _too_few(name, limit, n)
    errors = int(_errors(rows.challenger).sum())
    rate = errors / n
    status = BREACH if rate > limit else PASS
    detail = f"{rate:.2%} of {n} requests failed ({errors}), at most {limit:.2%} allowed"
    return GuardrailCheck(name, status, rate, limit, detail, {"errors": errors, "requests": n})


def latency_p99(rows: StageRows, limit: float) -> GuardrailCheck:
    name = "latency_p99_ms"
    if "latency_ms" not in rows.challenger:
        return _missing(name, limit, "latency_ms")
    latencies = pd.to_numeric(rows.challenger["latency_ms"], errors="coerce").dropna()
    if len(latencies) < MIN_ROWS:
        return _too_few(name, limit, len(latencies), "latencies")
    p99 = float(np.percentile(latencies.to_numpy(dtype=float), 99))
    status = BREACH if p99 > limit else PASS
    detail = f"p99 {p99:.1f} ms over {len(latencies)} requests, at most {limit:g} ms allowed"
    return GuardrailCheck(name, status, p99, limit, detail, {"requests": len(latencies)})


def prediction_drift(rows: StageRows, limit: float) -> GuardrailCheck:
    name = "prediction_drift"
    if "score" not in rows.challenger:
        return _missing(name, limit, "score")
    champion = rows.champion[["score"]].dropna().astype(float)
    challenger = rows.challenger[["score"]].dropna().astype(float)
    if min(len(champion), len(challenger)) < MIN_ROWS:
        return GuardrailCheck(
            name,
            NOT_EVALUATED,
            None,
            limit,
            f"{len(champion)} champion and {len(challenger)} challenger scores, "
            f"at least {MIN_ROWS} of each needed",
        )
    options = DriftOptions(columns=["score"], method=DRIFT_METHOD, threshold=limit)
    (column,) = compute_drift(champion, challenger, options).columns
    status = BREACH if column.drifted else PASS
    detail = (
        f"{DRIFT_METHOD} distance {column.score:.3f} of the challenger's scores from the "
        f"champion's, at most {limit:g} allowed"
    )
    return GuardrailCheck(name, status, column.score, limit, detail, {"method": column.method})


def quality(rows: StageRows, rule: QualityRule) -> GuardrailCheck:
    """The challenger against the champion on the stage's labelled rows (`rollout.quality`
    says how); the evidence keeps the numbers that decided."""
    name = QUALITY
    label = rule.config.columns.label
    if label not in rows.challenger or label not in rows.champion:
        return _missing(name, -rule.max_drop, label)
    counts = [int(f[label].notna().sum()) for f in (rows.champion, rows.challenger)]
    if min(counts) < rule.min_per_version:
        return GuardrailCheck(
            name,
            NOT_EVALUATED,
            None,
            -rule.max_drop,
            f"{counts[0]} champion and {counts[1]} challenger labelled rows, "
            f"at least {rule.min_per_version} of each needed",
        )
    try:
        comparison = compare_live(pd.concat([rows.champion, rows.challenger]), rule.config)
    except MlopsError as exc:
        return GuardrailCheck(name, NOT_EVALUATED, None, -rule.max_drop, str(exc))
    result = comparison.metric(rule.metric)
    what = "labelled pairs" if comparison.mode == "shadow" else "labelled rows"
    numbers = {
        "metric": rule.metric,
        "mode": comparison.mode,
        "champion_value": result.champion,
        "challenger_value": result.challenger,
        "difference": result.difference,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "confidence": comparison.confidence,
        "method": result.method,
        "verdict": result.verdict,
        "p_value": result.p_value,
        "max_drop": rule.max_drop,
        "rows": comparison.n_compared,
        "n_champion": comparison.n_champion,
        "n_challenger": comparison.n_challenger,
        "min_rows": rule.min_compared,
        "rows_needed": result.rows_needed,
        "rule": rule.source,
    }
    if comparison.n_compared < rule.min_compared:
        detail = f"{comparison.n_compared} {what}, at least {rule.min_compared} needed"
        return GuardrailCheck(name, NOT_EVALUATED, None, -rule.max_drop, detail, numbers)
    if result.verdict == UNDEFINED:
        detail = f"{rule.metric} is undefined on these rows (one class only?)"
        return GuardrailCheck(name, NOT_EVALUATED, None, -rule.max_drop, detail, numbers)
    # Breached only when even the interval's best end is a larger drop than allowed.
    breached = result.gain_high < -rule.max_drop
    detail = (
        f"{rule.metric} {result.challenger:.4f} against the champion's {result.champion:.4f}: "
        f"difference {result.difference:+.4f}, {comparison.confidence:.0%} interval "
        f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}] ({result.method}, "
        f"{comparison.n_compared} {what}): {result.verdict}"
        + (f", a drop of at most {rule.max_drop:g} allowed" if rule.max_drop else "")
    )
    return GuardrailCheck(
        name, BREACH if breached else PASS, result.gain, -rule.max_drop, detail, numbers
    )


def evaluate_stage(
    rows: StageRows,
    stage: RolloutStage,
    guardrails: Guardrails,
    quality_rule: QualityRule | None = None,
) -> StageEvaluation:
    checks = []
    if guardrails.max_error_rate is not None:
        checks.append(error_rate(rows, guardrails.max_error_rate))
    if guardrails.max_latency_p99_ms is not None:
        checks.append(latency_p99(rows, guardrails.max_latency_p99_ms))
    if guardrails.max_prediction_drift is not None:
        checks.append(prediction_drift(rows, guardrails.max_prediction_drift))
    if guardrails.quality_vs_champion:
        checks.append(
            quality(rows, quality_rule)
            if quality_rule is not None
            else GuardrailCheck(QUALITY, NOT_EVALUATED, None, None, "no champion to compare with")
        )
    labelled = int(rows.challenger["label"].notna().sum()) if "label" in rows.challenger else 0
    minimums = [
        MinimumCheck("minutes", round(rows.elapsed_minutes, 2), stage.min_duration_minutes),
        MinimumCheck("requests", len(rows.challenger), stage.min_requests),
        MinimumCheck("labelled rows", labelled, stage.min_labelled),
    ]
    if any(check.status == BREACH for check in checks):
        outcome = BREACH
    elif all(m.met for m in minimums) and all(c.status == PASS for c in checks):
        outcome = READY
    else:
        outcome = HOLD
    counts = {
        "champion": len(rows.champion),
        "challenger": len(rows.challenger),
        "challenger_labelled": labelled,
    }
    return StageEvaluation(stage.name, stage.traffic, outcome, minimums, checks, counts)

"""The rollout plan's schema and the guardrails' numbers, with the libraries as oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlops_core.errors import ConfigError
from mlops_core.evidence.live_comparison import ComparisonConfig
from mlops_core.policy import parse_policy
from mlops_core.rollout.guardrails import (
    BREACH,
    HOLD,
    NOT_EVALUATED,
    PASS,
    READY,
    StageRows,
    evaluate_stage,
    quality,
)
from mlops_core.rollout.quality import QualityRule, quality_rule
from mlops_core.rollout_policy import Guardrails, RolloutStage

PLAN = """
[models.m]
target = "champion"
[models.m.rollout]
[[models.m.rollout.stages]]
name = "{name}"
mode = "{mode}"
traffic = {traffic}
"""


def test_the_policy_refuses_a_plan_that_contradicts_itself() -> None:
    plan = parse_policy(PLAN.format(name="s", mode="shadow", traffic=0), "p").rollout_plan("m")
    assert plan is not None and plan.auto_advance and plan.stages[0].mode == "shadow"
    assert parse_policy("[models.m]\ntarget = 'champion'\n", "p").rollout_plan("m") is None
    with pytest.raises(ConfigError, match="a shadow stage serves no traffic"):
        parse_policy(PLAN.format(name="s", mode="shadow", traffic=5), "p")
    with pytest.raises(ConfigError, match="a split stage needs traffic above 0"):
        parse_policy(PLAN.format(name="s", mode="split", traffic=0), "p")
    with pytest.raises(ConfigError, match="rollout.stages.0.traffic"):
        parse_policy(PLAN.format(name="s", mode="split", traffic=120), "p")
    twice = PLAN.format(name="a", mode="split", traffic=5) + PLAN.split("[models.m.rollout]")[
        1
    ].format(name="a", mode="split", traffic=9)
    with pytest.raises(ConfigError, match="stage names must be distinct"):
        parse_policy(twice, "p")


def _log(version: str, labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2026-01-05"),
            "model_version": version,
            "label": labels,
            "score": scores,
            "prediction": (scores >= 0.5) * 1,
        }
    )


def _rule(max_drop: float = 0.0, min_compared: int = 100) -> QualityRule:
    config = ComparisonConfig(champion="1", challenger="3", n_resamples=400)
    return QualityRule("roc_auc", config, max_drop, min_compared, 50, "rollout defaults")


def test_the_quality_guardrail_is_the_live_comparison_of_the_stage_rows() -> None:
    rng = np.random.default_rng(4)
    y0, y1 = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    good0 = np.clip(0.5 * y0 + rng.random(400) * 0.6, 0, 1)
    good1 = np.clip(0.5 * y1 + rng.random(400) * 0.6, 0, 1)
    champion = _log("1", y0, good0)
    same = quality(StageRows(champion, _log("3", y1, good1), 60.0), _rule())
    numbers = same.numbers or {}
    assert same.status == PASS and numbers["verdict"] == "no significant difference"
    # The numbers that decided are the live comparison's, which sklearn checks.
    assert numbers["champion_value"] == pytest.approx(roc_auc_score(y0, good0), abs=1e-9)
    assert numbers["challenger_value"] == pytest.approx(roc_auc_score(y1, good1), abs=1e-9)
    assert numbers["ci_low"] < 0 < numbers["ci_high"] and numbers["rows"] == 800
    assert numbers["mode"] == "split" and numbers["method"] == "unpaired bootstrap"
    useless = _log("3", y1, rng.random(400))
    worse = quality(StageRows(champion, useless, 60.0), _rule())
    assert worse.status == BREACH and (worse.numbers or {})["verdict"] == "worse"
    assert "roc_auc" in worse.detail and "interval" in worse.detail
    # A drop the policy allows holds the guardrail; too few rows hold its judgement.
    tolerated = quality(StageRows(champion, useless, 60.0), _rule(max_drop=0.6))
    assert tolerated.status == PASS
    waiting = quality(StageRows(champion, useless, 60.0), _rule(min_compared=5000))
    assert waiting.status == NOT_EVALUATED and "800 labelled rows" in waiting.detail
    few = quality(StageRows(champion, useless.iloc[:30], 60.0), _rule())
    assert few.status == NOT_EVALUATED and "at least 50 of each" in few.detail


def test_a_stage_holds_until_its_guardrails_can_judge_and_breaches_on_numbers() -> None:
    stage = RolloutStage(name="canary", mode="split", traffic=10, min_requests=100)
    guardrails = Guardrails(max_error_rate=0.02, max_latency_p99_ms=100)
    latencies = np.linspace(1, 120, 200)
    champion = pd.DataFrame({"score": np.linspace(0, 1, 200)})
    challenger = pd.DataFrame({"error": [None] * 200, "latency_ms": latencies})
    few = evaluate_stage(StageRows(champion, challenger.iloc[:20], 5.0), stage, guardrails)
    assert few.outcome == HOLD and {g.status for g in few.guardrails} == {NOT_EVALUATED}
    slow = evaluate_stage(StageRows(champion, challenger, 5.0), stage, guardrails)
    (errors, latency) = slow.guardrails
    assert errors.observed == 0 and latency.status == BREACH and slow.outcome == BREACH
    assert latency.observed == pytest.approx(np.percentile(latencies, 99), abs=1e-9)
    fast = challenger.assign(latency_ms=latencies / 2)
    ready = evaluate_stage(StageRows(champion, fast, 5.0), stage, guardrails)
    again = evaluate_stage(StageRows(champion, fast, 5.0), stage, guardrails)
    # The evidence's digest depends on the evidence only: the same rows, the same digest.
    assert ready.outcome == READY and ready.sha256 == again.sha256 != slow.sha256
    assert "latency_p99_ms breached: p99 118.8 ms over 200 requests" in slow.summary


def test_the_quality_rule_follows_the_models_live_comparison_policy() -> None:
    text = "[models.m]\ntarget = 'champion'\ntask = 'classification'\n"
    stage = RolloutStage(name="canary", mode="split", traffic=10, min_labelled=80)
    defaults = quality_rule(
        None, parse_policy(text, "p").for_model("m"), "m", "1", "3", "f1", stage, 50
    )  # type: ignore[arg-type]
    assert (defaults.metric, defaults.max_drop, defaults.min_compared) == ("f1", 0.0, 80)
    assert defaults.config.confidence == 0.95 and defaults.source == "rollout defaults"
    text += "[models.m.live_comparison]\nmetric = 'log_loss'\nconfidence = 0.9\nmax_drop = 0.01\n"
    text += "min_labelled_rows = 700\nn_resamples = 300\n"
    live = quality_rule(
        None, parse_policy(text, "p").for_model("m"), "m", "1", "3", "f1", stage, 50
    )  # type: ignore[arg-type]
    assert (live.metric, live.max_drop, live.min_compared, live.min_per_version) == (
        "log_loss",
        0.01,
        700,
        80,
    )
    assert (live.config.confidence, live.config.n_resamples) == (0.9, 300)
    assert (live.config.champion, live.config.challenger) == ("1", "3")


def test_the_quality_guardrail_holds_without_a_champion_to_compare_with() -> None:
    stage = RolloutStage(name="canary", mode="split", traffic=10)
    rows = StageRows(pd.DataFrame(), pd.DataFrame({"label": [1] * 60}), 5.0)
    held = evaluate_stage(rows, stage, Guardrails(quality_vs_champion=True), None)
    (check,) = held.guardrails
    assert check.status == NOT_EVALUATED and held.outcome == HOLD
    assert "no champion to compare with" in held.summary

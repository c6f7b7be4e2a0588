"""The rollout plan's schema and the guardrails' numbers, with the libraries as oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlops_core.errors import ConfigError
from mlops_core.policy import parse_policy
from mlops_core.rollout.guardrails import (
    BREACH,
    HOLD,
    NOT_EVALUATED,
    READY,
    StageRows,
    evaluate_stage,
)
from mlops_core.rollout.quality import _auc_rows, _verdict, compare_unpaired
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


def test_roc_auc_through_ranks_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(40, 300))
    scores = np.round(rng.random((40, 300)) + 0.3 * labels, 2)  # rounding makes ties
    ours = _auc_rows(labels.astype(float), scores)
    theirs = [roc_auc_score(y, s) for y, s in zip(labels, scores, strict=True)]
    assert np.allclose(ours, theirs, atol=1e-9, rtol=0)
    single_class = _auc_rows(np.ones((1, 5)), np.arange(5.0)[None, :])
    assert np.isnan(single_class[0])


def _frame(labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"label": labels, "score": scores, "prediction": (scores >= 0.5) * 1})


def test_the_unpaired_bootstrap_tells_worse_from_no_difference() -> None:
    rng = np.random.default_rng(4)
    y0, y1 = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    good0 = np.clip(0.5 * y0 + rng.random(400) * 0.6, 0, 1)
    good1 = np.clip(0.5 * y1 + rng.random(400) * 0.6, 0, 1)
    same = compare_unpaired(_frame(y0, good0), _frame(y1, good1), "roc_auc", "higher")
    assert same.verdict == "no_difference" and same.ci_low < 0 < same.ci_high
    assert same.champion_value == pytest.approx(roc_auc_score(y0, good0), abs=1e-12)
    assert same.challenger_value == pytest.approx(roc_auc_score(y1, good1), abs=1e-12)
    worse = compare_unpaired(_frame(y0, good0), _frame(y1, rng.random(400)), "roc_auc", "higher")
    assert worse.verdict == "worse" and worse.ci_high < 0
    # An interval of challenger - champion below 0 is better when lower is better.
    assert (_verdict(-0.3, -0.1, "lower"), _verdict(-0.3, -0.1, "higher")) == ("better", "worse")


def test_a_stage_holds_until_its_guardrails_can_judge_and_breaches_on_numbers() -> None:
    stage = RolloutStage(name="canary", mode="split", traffic=10, min_requests=100)
    guardrails = Guardrails(max_error_rate=0.02, max_latency_p99_ms=100)
    latencies = np.linspace(1, 120, 200)
    champion = pd.DataFrame({"score": np.linspace(0, 1, 200)})
    challenger = pd.DataFrame({"error": [None] * 200, "latency_ms": latencies})
    few = evaluate_stage(
        StageRows(champion, challenger.iloc[:20], 5.0), stage, guardrails, "roc_auc", "higher"
    )
    assert few.outcome == HOLD and {g.status for g in few.guardrails} == {NOT_EVALUATED}
    slow = evaluate_stage(
        StageRows(champion, challenger, 5.0), stage, guardrails, "roc_auc", "higher"
    )
    (errors, latency) = slow.guardrails
    assert errors.observed == 0 and latency.status == BREACH and slow.outcome == BREACH
    assert latency.observed == pytest.approx(np.percentile(latencies, 99), abs=1e-9)
    fast = challenger.assign(latency_ms=latencies / 2)
    ready = evaluate_stage(StageRows(champion, fast, 5.0), stage, guardrails, "roc_auc", "higher")
    again = evaluate_stage(StageRows(champion, fast, 5.0), stage, guardrails, "roc_auc", "higher")
    # The evidence's digest depends on the evidence only: the same rows, the same digest.
    assert ready.outcome == READY and ready.sha256 == again.sha256 != slow.sha256
    assert "latency_p99_ms breached: p99 118.8 ms over 200 requests" in slow.summary

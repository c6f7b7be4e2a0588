"""Promotion gates on the seeded demo store (read only): results, evidence, fail-closed."""

from dataclasses import replace
from pathlib import Path

import pytest

from mlops_core.config import Settings
from mlops_core.errors import NotFound
from mlops_core.evidence.fairness_evidence import load_evaluation_set
from mlops_core.governance.gates import (
    FAILED,
    NOT_CONFIGURED,
    NOT_EVALUATED,
    PASSED,
    GateReport,
    evaluate_gates,
)
from mlops_core.stores.registry import Registry

CHURN = "churn-predictor"


@pytest.fixture(scope="module")
def registry(demo_settings: Settings) -> Registry:
    return Registry(demo_settings.tracking_uri)


def _by_name(report: GateReport) -> dict:
    return {r.name: r for r in report.results}


def test_the_fair_better_candidate_passes_every_gate_with_its_evidence(
    demo_settings: Settings, registry: Registry
) -> None:
    report = evaluate_gates(demo_settings, registry, CHURN, "3")
    gates = _by_name(report)
    assert list(gates) == [
        "min roc_auc",
        "regression roc_auc",
        "regression log_loss",
        "fairness gender demographic_parity_difference",
        "fairness gender equalized_odds_difference",
        "drift",
        "schema",
        "live_comparison",
        "checks latency_p99_ms",
        "checks deterministic",
        "checks missing_values",
    ]
    assert report.passed and report.champion_version == "1" and report.summary == "11 passed"
    version_run = registry.get_version(CHURN, "3").run_id
    assert version_run in gates["min roc_auc"].evidence
    assert gates["regression roc_auc"].details["delta"] > 0
    # The demo stores fairness evidence on every version's run; the gate reads it.
    fairness_evidence = gates["fairness gender equalized_odds_difference"].evidence
    assert "fairness/report.json" in fairness_evidence and version_run in fairness_evidence
    # ... having checked that its bytes are those the demo recorded in the audit log.
    assert "sha256 matches audit event #" in fairness_evidence
    drift = gates["drift"]
    # The demo drifts three columns from week five on; the latest week shows them.
    assert set(drift.details["drifted_columns"]) == {
        "monthly_charges",
        "support_calls",
        "contract_type",
    }
    assert drift.observed == pytest.approx(3 / 8) and drift.threshold == 0.5
    assert "inference_churn_predictor" in drift.evidence
    assert gates["schema"].status == PASSED


def test_the_accurate_but_unfair_candidate_is_blocked_by_fairness(
    demo_settings: Settings, registry: Registry
) -> None:
    report = evaluate_gates(demo_settings, registry, CHURN, "2")
    blocking, unseen = report.blocking
    # v2 never saw live traffic: the live comparison cannot be made, which blocks too.
    assert (unseen.name, unseen.status) == ("live_comparison", "not_evaluated")
    assert "no live traffic" in unseen.reason
    assert blocking.name == "fairness gender demographic_parity_difference"
    assert blocking.status == FAILED and blocking.observed > 0.1 and blocking.threshold == 0.08
    assert "must be at most 0.08" in blocking.reason
    assert report.to_dict()["passed"] is False


MISSING_EVIDENCE = """
[defaults]
target = "champion"
require_schema_match = true
[defaults.min_metrics]
pr_auc = 0.5
[defaults.fairness.thresholds]
demographic_parity_difference = 0.1
[defaults.drift]
max_drift_share = 0.5
[defaults.data]
evaluation = "artifact:nowhere/evaluation.parquet"
"""


def with_policy(settings: Settings, folder: Path, text: str) -> Settings:
    path = folder / "policy.toml"
    path.write_text(text)
    return replace(settings, policy_file=path)


def test_missing_evidence_is_not_evaluated_and_never_passes(
    demo_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    settings = with_policy(demo_settings, tmp_path, MISSING_EVIDENCE)
    report = evaluate_gates(settings, registry, CHURN, "3")
    gates = _by_name(report)
    assert {name: g.status for name, g in gates.items()} == {
        "min pr_auc": NOT_EVALUATED,
        # The policy names evaluation data this version does not have: the policy is wrong.
        "fairness": NOT_CONFIGURED,
        "drift": NOT_EVALUATED,
        "schema": NOT_EVALUATED,
    }
    assert not report.passed and len(report.blocking) == 4
    assert "no pr_auc metric" in gates["min pr_auc"].reason
    assert "nowhere/evaluation.parquet" in gates["fairness"].reason
    assert "fix or remove that key" in gates["fairness"].reason
    assert "no current data source is configured" in gates["drift"].reason


DIRECTIONS = """
[defaults]
alias = "challenger"
[defaults.min_metrics]
log_loss = 0.5
[defaults.max_regression]
roc_auc = 0.0
"""


def test_lower_is_better_minimum_and_no_champion_to_regress_from(
    demo_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    report = evaluate_gates(with_policy(demo_settings, tmp_path, DIRECTIONS), registry, CHURN, "3")
    gates = _by_name(report)
    assert report.champion_version is None
    # log_loss is lower-is-better: the "minimum" is a ceiling, and v3's 0.58 is above it.
    assert gates["min log_loss"].status == FAILED and "at most 0.5" in gates["min log_loss"].reason
    assert gates["regression roc_auc"].status == PASSED
    assert "nothing to regress from" in gates["regression roc_auc"].reason


def test_an_unknown_version_is_an_error_not_a_gate_result(
    demo_settings: Settings, registry: Registry
) -> None:
    with pytest.raises(NotFound):
        evaluate_gates(demo_settings, registry, CHURN, "99")


SLOW_CURRENT_DATA = """
[models."churn-predictor"]
target = "champion"
[models."churn-predictor".data]
reference = "artifact:reference/reference.parquet"
current_query = '''
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000000)
SELECT t.* FROM inference_churn_predictor t WHERE (SELECT max(n) FROM c) > 0
'''
[models."churn-predictor".drift]
max_drift_share = 0.5
"""


def test_a_current_data_query_that_times_out_leaves_the_drift_gate_not_evaluated(
    demo_settings: Settings, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_QUERY_TIMEOUT_SECONDS", "1")
    settings = with_policy(demo_settings, tmp_path, SLOW_CURRENT_DATA)
    drift = _by_name(evaluate_gates(settings, registry, CHURN, "3"))["drift"]
    assert drift.status == NOT_EVALUATED
    assert "MLOPS_QUERY_TIMEOUT_SECONDS" in drift.reason


def test_a_disparity_over_a_single_compared_group_blocks_as_not_evaluated(
    demo_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    evaluation = load_evaluation_set(demo_settings, registry, CHURN, "3").frame
    sizes = evaluation["age_band"].value_counts().sort_values(ascending=False)
    # Only the largest age band is big enough to be compared.
    policy = f"""
[defaults]
target = "champion"
[defaults.fairness]
sensitive_features = ["age_band"]
min_group_size = {int(sizes.iloc[1]) + 1}
[defaults.fairness.thresholds]
demographic_parity_difference = 0.5
"""
    settings = with_policy(demo_settings, tmp_path, policy)
    gate = _by_name(evaluate_gates(settings, registry, CHURN, "3"))[
        "fairness age_band demographic_parity_difference"
    ]
    assert gate.status == NOT_EVALUATED
    assert "fewer than two compared groups" in gate.reason
    for small in sizes.index[1:]:
        assert small in gate.reason

"""The panel on a team's own MLflow store (tests/team_store.py): no policy means no promotion,
the team's aliases and stages are respected, and `policy init` / `policy check` get a team
from nothing to a working policy."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from mlops_core.config import Settings
from mlops_core.errors import ActionRefused
from mlops_core.governance.gates import NOT_CONFIGURED, evaluate_gates
from mlops_core.governance.overview import model_overview
from mlops_core.governance.policy_in_force import POLICY_CHANGED
from mlops_core.governance.policy_tools import check_policy, draft_policy
from mlops_core.governance.promotion.decide import approve
from mlops_core.governance.promotion.reconcile import reconcile
from mlops_core.governance.promotion.rollback import rollback
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.stores import audit, db
from mlops_core.stores.registry import Registry
from tests.apptest import ADMIN, APPROVER, REQUESTER
from tests.test_cli import run_cli

CHURN, HOUSE, FRAUD = "team-churn", "team-house-price", "team-legacy-fraud"

TEAM_POLICY = """
[models."team-churn"]
target = "production"
key_metric = "roc_auc"
[models."team-churn".min_metrics]
roc_auc = 0.5

[models."team-legacy-fraud"]
target = "stage:Production"
[models."team-legacy-fraud".min_metrics]
roc_auc = 0.5
"""


def with_policy(settings: Settings, text: str) -> Settings:
    path = settings.data_dir / "policy.toml"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return replace(settings, policy_file=path)


@pytest.fixture
def panel(team_settings: Settings) -> Settings:
    db.migrate(team_settings)
    return team_settings


def _stages(registry: Registry, model: str) -> dict[str, str]:
    return {v.version: v.stage for v in registry.list_versions(model)}


def test_a_model_no_policy_covers_is_shown_but_cannot_pass_or_be_requested(
    panel: Settings,
) -> None:
    registry = Registry(panel.tracking_uri)
    report = evaluate_gates(panel, registry, CHURN, "2")
    assert not report.passed
    assert [(r.name, r.status) for r in report.results] == [("policy", NOT_CONFIGURED)]
    assert '[models."team-churn"]' in report.results[0].reason
    assert "policy init" in report.results[0].reason
    with pytest.raises(ActionRefused, match="No policy names where team-churn is promoted"):
        request_promotion(panel, registry, REQUESTER, CHURN, "2", "better AUC")
    # Nothing was invented in MLflow.
    assert registry.list_models() and "champion" not in registry._model(CHURN).aliases

    overview = {e.name: e for e in model_overview(registry, load_policy(panel.policy_file))}
    churn = overview[CHURN]
    assert (churn.covered, churn.target, churn.champion_version) == (False, None, None)
    assert churn.served_from == "no policy (alias production → v1)"
    assert overview[FRAUD].served_from == "no policy (stage Production: v1; stage Staging: v2)"
    # The key metric is one the model logs, by kind: roc_auc for the classifier, the
    # regressor's own metric for the regressor.
    assert churn.key_metric is None  # nothing is served, so nothing to read it from
    assert overview[HOUSE].served_from == "no policy (alias production → v1)"


def test_gate_cli_exits_1_with_not_configured_and_one_json_document(panel: Settings) -> None:
    env = {"MLOPS_DATA_DIR": str(panel.data_dir), "MLFLOW_TRACKING_URI": panel.tracking_uri}
    result = run_cli("gate", "--model", CHURN, "--version", "2", "--json", env=env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert [r["status"] for r in report["results"]] == ["not_configured"]
    models = json.loads(run_cli("models", "--json", env=env).stdout)
    assert {m["name"]: m["target"] for m in models} == {
        CHURN: None,
        HOUSE: None,
        FRAUD: None,
        "team-nosig": None,
    }


def test_an_alias_promotion_moves_the_teams_alias_and_nothing_else(panel: Settings) -> None:
    settings = with_policy(panel, TEAM_POLICY)
    registry = Registry(settings.tracking_uri)
    overview = {e.name: e for e in model_overview(registry, load_policy(settings.policy_file))}
    assert (overview[CHURN].target, overview[CHURN].champion_version) == ("production", "1")
    assert overview[CHURN].key_metric == "roc_auc" and overview[CHURN].key_metric_value

    request = request_promotion(settings, registry, REQUESTER, CHURN, "2", "gbm beats lr")
    assert (request.alias, request.champion_version) == ("production", "1")
    assert request.policy_sha256 == load_policy(settings.policy_file).sha256
    applied = approve(settings, registry, APPROVER, request.id, "checked")
    assert applied.status == "applied"
    aliases = registry._model(CHURN).aliases
    assert {a: str(v) for a, v in aliases.items()} == {"production": "2"}
    assert applied.decisions[0].policy_sha256 == request.policy_sha256


def test_a_stage_promotion_transitions_and_archives_and_rolls_back(panel: Settings) -> None:
    settings = with_policy(panel, TEAM_POLICY)
    registry = Registry(settings.tracking_uri)
    assert _stages(registry, FRAUD) == {"2": "Staging", "1": "Production"}
    request = request_promotion(settings, registry, REQUESTER, FRAUD, "2", "new fraud model")
    assert (request.alias, request.champion_version) == ("stage:Production", "1")
    with pytest.raises(ActionRefused, match="four eyes"):
        approve(settings, registry, Actor("requester", frozenset({"approver"})), request.id, "x")
    applied = approve(settings, registry, APPROVER, request.id, "checked")
    assert applied.status == "applied"
    assert _stages(registry, FRAUD) == {"2": "Production", "1": "Archived"}
    assert registry.version_at(FRAUD, "stage:Production").version == "2"
    assert registry._model(FRAUD).aliases == {}

    back = rollback(settings, registry, APPROVER, FRAUD, "fraud alerts doubled")
    assert back.status == "rolled_back"
    assert _stages(registry, FRAUD) == {"2": "Archived", "1": "Production"}
    assert reconcile(settings, registry) == []
    # Someone moves Production in MLflow's own UI: reconcile names it.
    registry.client.transition_model_version_stage(FRAUD, "2", "Production", True)
    [warning] = reconcile(settings, registry)
    assert (warning.alias, warning.expected_version, warning.actual_version) == (
        "stage:Production",
        "1",
        "2",
    )
    actions = [e.action for e in audit.list_events(settings.db_url)]
    assert actions.count("apply") == 1 and actions.count("rollback") == 1
    assert audit.verify(settings).ok


def test_a_stage_moved_outside_the_panel_makes_the_apply_stale(panel: Settings) -> None:
    settings = with_policy(panel, TEAM_POLICY)
    registry = Registry(settings.tracking_uri)
    request = request_promotion(settings, registry, REQUESTER, FRAUD, "2", "new fraud model")
    # Someone moves Production by hand in MLflow's UI after the request froze v1.
    registry.client.transition_model_version_stage(FRAUD, "1", "Archived")
    registry.client.transition_model_version_stage(FRAUD, "2", "Production")
    registry.client.transition_model_version_stage(FRAUD, "2", "Staging")
    result = approve(settings, registry, APPROVER, request.id, "checked")
    assert result.status == "stale"
    assert _stages(registry, FRAUD) == {"2": "Staging", "1": "Archived"}


def test_a_policy_edit_is_audited_with_its_diff_and_frozen_into_decisions(
    panel: Settings,
) -> None:
    settings = with_policy(panel, TEAM_POLICY)
    registry = Registry(settings.tracking_uri)
    request = request_promotion(settings, registry, REQUESTER, CHURN, "2", "gbm beats lr")
    old_sha = request.policy_sha256
    edited = TEAM_POLICY.replace("roc_auc = 0.5", "roc_auc = 0.55", 1)
    settings.policy_file.write_text(edited)
    applied = approve(settings, registry, APPROVER, request.id, "checked")
    new_sha = load_policy(settings.policy_file).sha256
    assert new_sha != old_sha and applied.decisions[0].policy_sha256 == new_sha
    with db.session_factory(settings.db_url)() as session:
        changes = session.scalars(
            select(db.AuditEvent).where(db.AuditEvent.action == POLICY_CHANGED)
        ).all()
    assert [(c.details["old_sha256"], c.details["new_sha256"]) for c in changes] == [
        (None, old_sha),
        (old_sha, new_sha),
    ]
    diff = changes[1].details["diff"]
    assert "-roc_auc = 0.5\n" in diff and "+roc_auc = 0.55\n" in diff
    assert audit.verify(settings).ok


def test_a_policy_that_moves_the_target_refuses_the_old_request(panel: Settings) -> None:
    settings = with_policy(panel, TEAM_POLICY)
    registry = Registry(settings.tracking_uri)
    request = request_promotion(settings, registry, REQUESTER, CHURN, "2", "gbm beats lr")
    settings.policy_file.write_text(TEAM_POLICY.replace('"production"', '"prod-eu"'))
    with pytest.raises(ActionRefused, match="now promotes team-churn to the alias prod-eu"):
        approve(settings, registry, ADMIN, request.id, "checked")


def test_policy_init_drafts_what_the_registry_shows_and_check_passes_once_filled(
    panel: Settings, tmp_path: Path
) -> None:
    registry = Registry(panel.tracking_uri)
    draft = draft_policy(registry, load_policy(None), panel.tracking_uri)
    assert 'target = "production"  # found: alias production → v1' in draft
    assert 'target = "stage:Production"  # found: v1 is in stage Production' in draft
    assert '# target = "production"  # DECIDE: no alias and no version in Production' in draft
    assert 'key_metric = "roc_auc"' in draft and 'key_metric = "r2"' in draft
    draft_file = tmp_path / "draft.toml"
    draft_file.write_text(draft)
    unfilled = check_policy(registry, load_policy(draft_file))
    assert not unfilled.ok
    assert any("gates nothing" in p for p in unfilled.problems)
    assert any("team-nosig: names no target" in p for p in unfilled.problems)

    # A person decides: the drafted minimums become thresholds, and team-nosig, which logs
    # no metric to gate on, stays out of the policy (looked at, never promoted).
    filled = re.sub(r"^# (\w+ = [-+\d.e]+)  # at (least|most)$", r"\1", draft, flags=re.M)
    filled = filled[: filled.index('[models."team-nosig"]')]
    filled_file = tmp_path / "policy.toml"
    filled_file.write_text(filled)
    result = check_policy(registry, load_policy(filled_file))
    assert result.ok, result.problems
    assert result.notes == ["Not covered (can be looked at, not promoted): team-nosig"]


def test_policy_check_names_unknown_models_metrics_and_missing_artifacts(
    panel: Settings,
) -> None:
    policy = """
[models."no-such-model"]
target = "production"
[models."team-churn"]
target = "production"
key_metric = "auc_typo"
[models."team-churn".min_metrics]
roc_auc = 0.5
[models."team-churn".data]
evaluation = "artifact:evaluation/evaluation.parquet"
"""
    settings = with_policy(panel, policy)
    env = {"MLOPS_DATA_DIR": str(settings.data_dir), "MLFLOW_TRACKING_URI": settings.tracking_uri}
    result = run_cli("policy", "check", "--json", env=env)
    assert result.returncode == 1, result.stderr
    problems = json.loads(result.stdout)["problems"]
    assert "no-such-model: no registered model of that name." in problems
    assert "team-churn: no version logs the metric 'auc_typo'." in problems
    assert any("data.evaluation = 'artifact:evaluation/evaluation.parquet'" in p for p in problems)

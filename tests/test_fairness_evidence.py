"""Fairness evidence on real MLflow stores: the seeded demo, and small stores of our own
wherever a test writes (so the shared demo store only ever gets what the demo itself logs)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import accuracy_score, precision_score

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.demo.evidence import seed_fairness_evidence
from mlops_core.errors import InvalidInput, MlopsError, NotFound
from mlops_core.evidence.fairness import FairnessConfig, evaluate_fairness
from mlops_core.evidence.fairness_evidence import (
    PASSED_TAG,
    REPORT_ARTIFACT,
    compute_fairness,
    fairness_for_version,
    fairness_status,
    has_stored_report,
    log_fairness_evidence,
    metric_key,
    model_policy,
    read_stored_report,
    record_fairness_evidence,
    review_fairness,
    sensitive_options,
)
from mlops_core.governance.decision_record import gates_markdown
from mlops_core.governance.gates import FAILED, NOT_EVALUATED, PASSED, GateResult, evaluate_gates
from mlops_core.people.auth import authenticate
from mlops_core.people.tokens import create_token
from mlops_core.people.user_admin import manage_user
from mlops_core.policy import EXAMPLE_POLICY
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import as_loaded, load_run_artifact_frame
from tests.apptest import APPROVER
from tests.conftest import settings_for

CHURN = "churn-predictor"
SMALL_MODEL = "small-model"


@pytest.fixture(scope="module")
def demo(demo_settings: Settings) -> Registry:
    """The demo store with its fairness evidence (a no-op once run_demo seeds it)."""
    seed_fairness_evidence(demo_settings, APPROVER)
    return Registry(demo_settings.tracking_uri)


def evaluation_frame(demo_settings: Settings, model: str, version: str) -> pd.DataFrame:
    registry = Registry(demo_settings.tracking_uri)
    run_id = registry.get_version(model, version).run_id
    return load_run_artifact_frame(registry.client, run_id, "evaluation/evaluation.parquet").frame


def store_with_version(data_dir: Path, *evaluations: pd.DataFrame) -> Settings:
    """A store of our own: the example policy, an empty panel database, and one registered
    version of SMALL_MODEL per evaluation set (v1, v2, ...), whose run holds it and
    nothing else."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EXAMPLE_POLICY, data_dir / "policy.toml")
    settings = settings_for(data_dir)
    db.upgrade(settings.db_url)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.create_experiment(
        "evaluations", artifact_location=f"{settings.artifact_root}/evaluations"
    )
    client.create_registered_model(SMALL_MODEL)
    for evaluation in evaluations:
        run_id = client.create_run(experiment).info.run_id
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "evaluation.parquet"
            evaluation.to_parquet(path, index=False)
            client.log_artifact(run_id, str(path), "evaluation")
        client.set_terminated(run_id)
        client.create_model_version(SMALL_MODEL, f"{settings.artifact_root}/model", run_id=run_id)
    return settings


@pytest.fixture(scope="module")
def small(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Churn v2's evaluation set (fails on gender) registered in a store of our own."""
    frame = evaluation_frame(demo_settings, CHURN, "2")
    return store_with_version(tmp_path_factory.mktemp("small-store"), frame)


# --- the demo's evidence --------------------------------------------------------------------


def test_demo_stores_evidence_for_every_version(demo: Registry, demo_settings: Settings) -> None:
    for model in (CHURN, "credit-default"):
        for version in demo.list_versions(model):
            run = demo.get_run(version.run_id)
            assert has_stored_report(demo, version.run_id)
            assert run.tags[PASSED_TAG] == ("false" if version.version == "2" else "true")
            assert "fairness.gender.demographic_parity_difference" in run.metrics
    assert seed_fairness_evidence(demo_settings, APPROVER) == []


def test_stored_evidence_is_what_recomputing_gives(demo: Registry, demo_settings: Settings) -> None:
    stored = fairness_for_version(demo_settings, demo, CHURN, "2")
    fresh = fairness_for_version(demo_settings, demo, CHURN, "2", recompute=True)
    assert stored.source.startswith(f"stored evidence: {REPORT_ARTIFACT} of run ")
    assert fresh.source.startswith("computed now from artifact evaluation/evaluation.parquet")
    assert stored.report.to_dict() == fresh.report.to_dict()
    assert stored.report.passed is False
    assert stored.report.feature("gender").demographic_parity_difference > 0.1


def test_status_names_the_worst_disparity(demo: Registry) -> None:
    unfair = fairness_status(demo, CHURN, "2")
    assert (unfair.passed, unfair.label, unfair.worst_feature) == (False, "fail", "gender")
    assert unfair.worst.metric == "demographic_parity_difference"
    assert unfair.summary.startswith("fail: gender demographic_parity_difference 0.1")
    champion = fairness_status(demo, CHURN, "champion")
    assert champion.passed is True and champion.has_evidence
    assert champion.source.startswith(REPORT_ARTIFACT)


def test_candidate_is_more_accurate_but_less_fair_than_the_champion(
    demo: Registry, demo_settings: Settings
) -> None:
    review = review_fairness(demo_settings, demo, CHURN, "2")
    comparison = review.comparison
    assert comparison is not None and review.champion_version == "1"
    assert comparison.accuracy_change == "better"
    assert (comparison.candidate.report.passed, comparison.champion.report.passed) == (False, True)
    row = next(r for r in comparison.rows if r.metric == "demographic_parity_difference")
    assert row.delta == pytest.approx(row.candidate - row.champion)
    assert row.less_fair and row.candidate_passed is False and row.champion_passed is True
    assert (row.threshold, row.bound) == (0.08, "max")
    assert "(better)" in comparison.headline and "fails (champion passes)" in comparison.headline


def test_the_champion_is_not_compared_with_itself(demo: Registry, demo_settings: Settings) -> None:
    review = review_fairness(demo_settings, demo, CHURN, "champion")
    assert (review.version, review.champion_version, review.comparison) == ("1", "1", None)


def test_other_sensitive_features_are_computed_and_say_why(
    demo: Registry, demo_settings: Settings
) -> None:
    evidence = fairness_for_version(
        demo_settings, demo, CHURN, "3", sensitive=["gender", "age_band"]
    )
    assert [f.name for f in evidence.report.features] == ["gender", "age_band", "gender&age_band"]
    assert evidence.source.endswith("the stored evidence was computed with other settings")


def test_stored_evidence_of_another_policy_is_not_used(
    demo: Registry, demo_settings: Settings, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    text = EXAMPLE_POLICY.read_text().replace(
        "demographic_parity_difference = 0.08", "demographic_parity_difference = 0.2"
    )
    policy.write_text(text)
    relaxed = dataclasses.replace(demo_settings, policy_file=policy)
    evidence = fairness_for_version(relaxed, demo, CHURN, "2")
    assert "other settings" in evidence.source
    assert evidence.report.passed is True


def test_sensitive_options_are_the_categorical_columns(
    demo: Registry, demo_settings: Settings
) -> None:
    frame = evaluation_frame(demo_settings, CHURN, "1")
    options = sensitive_options(frame, model_policy(demo_settings, CHURN))
    assert options[0] == "gender" and "age_band" in options
    assert not {"label", "score", "prediction", "tenure_months"} & set(options)


def test_a_missing_sensitive_column_is_named(demo: Registry, demo_settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="'ethnicity' is not in the data"):
        fairness_for_version(demo_settings, demo, CHURN, "1", sensitive=["ethnicity"])


def test_an_unknown_version_is_not_found(demo: Registry, demo_settings: Settings) -> None:
    with pytest.raises(NotFound, match="no version 'challenger'"):
        fairness_for_version(demo_settings, demo, CHURN, "challenger")


# --- writing evidence (own stores) ----------------------------------------------------------


def test_recording_logs_report_metrics_and_tag(small: Settings) -> None:
    registry = Registry(small.tracking_uri)
    assert fairness_status(registry, SMALL_MODEL, "1").label == "no evidence"
    record_fairness_evidence(small, registry, SMALL_MODEL, "1", APPROVER)
    run_id = registry.get_version(SMALL_MODEL, "1").run_id
    run = registry.get_run(run_id)
    assert run.tags[PASSED_TAG] == "false"
    assert run.metrics["fairness.gender.demographic_parity_difference"] > 0.1
    assert fairness_status(registry, SMALL_MODEL, "1").label == "fail"

    # Logging again replaces the report and adds a point to each metric.
    report = evaluate_fairness(
        load_run_artifact_frame(registry.client, run_id, "evaluation/evaluation.parquet").frame,
        FairnessConfig(label="label", prediction="prediction", sensitive=["gender", "age_band"]),
    )
    log_fairness_evidence(small, registry, registry.get_version(SMALL_MODEL, "1"), report, APPROVER)
    assert read_stored_report(registry, run_id).to_dict() == report.to_dict()
    history = registry.metric_history(run_id, "fairness.gender.demographic_parity_difference")
    assert len(history) == 2
    assert (
        "fairness.gender_x_age_band.equalized_odds_difference" in registry.get_run(run_id).metrics
    )
    assert registry.get_run(run_id).tags[PASSED_TAG] == "none"


def test_the_cli_log_flag_records_evidence(
    small: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(small.data_dir))
    assert main(["fairness", "--model", SMALL_MODEL, "--version", "1", "--log"]) == 2
    assert "changes state" in capsys.readouterr().err  # no token, nothing stored
    manage_user(small, None, "ann", "long-enough-pw", ["approver"])
    ann = authenticate(small, "ann", "long-enough-pw")
    monkeypatch.setenv("MLOPS_TOKEN", create_token(small, ann, "ci").secret)
    assert main(["fairness", "--model", SMALL_MODEL, "--version", "1", "--log"]) == 1
    assert "stored on the version's run" in capsys.readouterr().out
    evidence = fairness_for_version(small, Registry(small.tracking_uri), SMALL_MODEL, "1")
    assert evidence.source.startswith("stored evidence") and evidence.report.passed is False


def test_a_failed_upload_logs_nothing(small: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should be")
    client = MlflowClient(tracking_uri=small.tracking_uri)
    experiment = client.create_experiment(
        "unwritable", artifact_location=(blocker / "artifacts").as_uri()
    )
    run_id = client.create_run(experiment).info.run_id
    registry = Registry(small.tracking_uri)
    report = fairness_for_version(small, registry, SMALL_MODEL, "1").report
    elsewhere = dataclasses.replace(registry.get_version(SMALL_MODEL, "1"), run_id=run_id)
    with pytest.raises(MlopsError, match=f"run {run_id}"):
        log_fairness_evidence(small, registry, elsewhere, report, APPROVER)
    run = client.get_run(run_id)
    assert not run.data.metrics and PASSED_TAG not in run.data.tags


def test_an_unreadable_stored_report_says_so(demo_settings: Settings, tmp_path: Path) -> None:
    settings = store_with_version(tmp_path / "store", evaluation_frame(demo_settings, CHURN, "3"))
    registry = Registry(settings.tracking_uri)
    run_id = registry.get_version(SMALL_MODEL, "1").run_id
    registry.client.log_text(run_id, json.dumps({"features": {}}), REPORT_ARTIFACT)
    # Not the panel's: recomputed without a look at it, unless external evidence is used.
    evidence = fairness_for_version(settings, registry, SMALL_MODEL, "1")
    assert evidence.source.endswith("was not produced by the panel (no digest of it is recorded)")
    external = with_policy(settings, tmp_path, ACCEPT_EXTERNAL)
    with pytest.raises(InvalidInput, match="cannot be read.*recompute"):
        fairness_for_version(external, registry, SMALL_MODEL, "1")
    assert fairness_for_version(external, registry, SMALL_MODEL, "1", recompute=True).report


def test_an_evaluation_file_outside_mlflow(small: Settings, tmp_path: Path) -> None:
    registry = Registry(small.tracking_uri)
    run_id = registry.get_version(SMALL_MODEL, "1").run_id
    frame = load_run_artifact_frame(registry.client, run_id, "evaluation/evaluation.parquet").frame
    frame.to_csv(tmp_path / "evaluation.csv", index=False)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace(
            'evaluation = "artifact:evaluation/evaluation.parquet"',
            f'evaluation = "{tmp_path / "evaluation.csv"}"',
        )
    )
    settings = dataclasses.replace(small, policy_file=policy)
    evidence = fairness_for_version(settings, registry, SMALL_MODEL, "1", recompute=True)
    assert evidence.source.startswith("computed now from file evaluation.csv")
    (tmp_path / "evaluation.csv").unlink()
    with pytest.raises(NotFound, match="evaluation.csv does not exist"):
        fairness_for_version(settings, registry, SMALL_MODEL, "1", recompute=True)


# --- evidence integrity (own stores) --------------------------------------------------------


def with_policy(settings: Settings, folder: Path, *changes: tuple[str, str]) -> Settings:
    """The example policy with each (old, new) text replaced."""
    text = EXAMPLE_POLICY.read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = folder / f"policy-{len(list(folder.glob('policy-*.toml')))}.toml"
    path.write_text(text)
    return dataclasses.replace(settings, policy_file=path)


NO_EVALUATION_SET = ("evaluation/evaluation.parquet", "nowhere/evaluation.parquet")
ACCEPT_EXTERNAL = ("accept_external_evidence = false", "accept_external_evidence = true")
FAIRNESS_GATE = "fairness gender demographic_parity_difference"


def fairness_gates(settings: Settings, registry: Registry, version: str) -> dict[str, GateResult]:
    report = evaluate_gates(settings, registry, SMALL_MODEL, version)
    return {r.name: r for r in report.results if r.kind == "fairness"}


@pytest.fixture
def unfair_and_fair(demo_settings: Settings, tmp_path: Path) -> Settings:
    """SMALL_MODEL v1 on churn v2's evaluation set (unfair), v2 on churn v3's (fair),
    each with the evidence the panel computed and recorded."""
    settings = store_with_version(
        tmp_path / "store",
        evaluation_frame(demo_settings, CHURN, "2"),
        evaluation_frame(demo_settings, CHURN, "3"),
    )
    registry = Registry(settings.tracking_uri)
    for version in ("1", "2"):
        record_fairness_evidence(settings, registry, SMALL_MODEL, version, APPROVER)
    return settings


def copy_report(registry: Registry, source: str, target: str) -> None:
    """What MLflow lets anyone with write access do: one version's report onto another's run."""
    local = registry.client.download_artifacts(
        registry.get_version(SMALL_MODEL, source).run_id, REPORT_ARTIFACT
    )
    registry.client.log_artifact(
        registry.get_version(SMALL_MODEL, target).run_id, local, "fairness"
    )


def test_a_report_swapped_onto_an_unfair_version_never_passes_its_gate(
    unfair_and_fair: Settings, tmp_path: Path
) -> None:
    settings = unfair_and_fair
    registry = Registry(settings.tracking_uri)
    before = fairness_gates(settings, registry, "1")[FAIRNESS_GATE]
    assert before.status == FAILED and "sha256 matches audit event" in before.evidence

    copy_report(registry, "2", "1")
    run_id = registry.get_version(SMALL_MODEL, "1").run_id
    assert read_stored_report(registry, run_id).passed is True  # the swap took
    # The evaluation set is there: the truth is computed again, and the swap is named.
    recomputed = fairness_gates(settings, registry, "1")[FAIRNESS_GATE]
    assert recomputed.status == FAILED and recomputed.observed == before.observed
    assert recomputed.evidence.startswith("computed now from artifact evaluation/")
    assert f"{REPORT_ARTIFACT} of run {run_id} is not the evidence the panel stored" in (
        recomputed.evidence
    )
    # Without it the gate is not evaluated, naming the artifact and the mismatch - even
    # when the policy accepts external evidence, since this contradicts a recorded digest.
    for blind in (
        with_policy(settings, tmp_path, NO_EVALUATION_SET),
        with_policy(settings, tmp_path, NO_EVALUATION_SET, ACCEPT_EXTERNAL),
    ):
        (gate,) = fairness_gates(blind, registry, "1").values()
        assert gate.status == NOT_EVALUATED, gate
        assert f"{REPORT_ARTIFACT} of run {run_id} is not the evidence the panel stored" in (
            gate.reason
        )
        assert "nowhere/evaluation.parquet" in gate.reason
    # The panel storing fresh evidence makes it the panel's again.
    record_fairness_evidence(settings, registry, SMALL_MODEL, "1", APPROVER)
    assert "sha256 matches" in fairness_gates(settings, registry, "1")[FAIRNESS_GATE].evidence


def test_external_evidence_is_used_only_when_the_policy_accepts_it(
    demo_settings: Settings, tmp_path: Path
) -> None:
    """Evidence written by someone else (CI, say), with no digest on record."""
    settings = store_with_version(tmp_path / "store", evaluation_frame(demo_settings, CHURN, "3"))
    registry = Registry(settings.tracking_uri)
    report = fairness_for_version(settings, registry, SMALL_MODEL, "1", recompute=True).report
    run_id = registry.get_version(SMALL_MODEL, "1").run_id
    registry.client.log_text(run_id, json.dumps(report.to_dict()), REPORT_ARTIFACT)
    (gate,) = fairness_gates(
        with_policy(settings, tmp_path, NO_EVALUATION_SET), registry, "1"
    ).values()
    assert gate.status == NOT_EVALUATED
    assert f"{REPORT_ARTIFACT} of run {run_id} was not produced by the panel" in gate.reason

    accepting = with_policy(settings, tmp_path, NO_EVALUATION_SET, ACCEPT_EXTERNAL)
    gates = fairness_gates(accepting, registry, "1")
    assert len(gates) == 2 and all(g.status == PASSED for g in gates.values())
    for gate in gates.values():
        assert gate.evidence.startswith(
            f"external evidence (not produced by the panel): {REPORT_ARTIFACT} of run {run_id}"
        )
    record = gates_markdown(list(gates.values()))
    assert "external evidence (not produced by the panel)" in record


# --- pure functions -------------------------------------------------------------------------


def test_metric_keys_follow_mlflow_naming_rules() -> None:
    assert metric_key("gender", "demographic_parity_ratio") == (
        "fairness.gender.demographic_parity_ratio"
    )
    assert metric_key("gender&age band", "x") == "fairness.gender_x_age band.x"
    assert metric_key("país/región?", "x") == "fairness.pa_s_regi_n_.x"


def test_overall_rates_are_those_of_the_whole_set() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, 500),
            "prediction": rng.integers(0, 2, 500),
            "group": rng.choice(["a", "b", None], 500),
        }
    )
    report = evaluate_fairness(
        frame, FairnessConfig(label="label", prediction="prediction", sensitive=["group"])
    )
    overall = report.overall
    assert overall.count == 500
    assert overall.accuracy == pytest.approx(accuracy_score(frame.label, frame.prediction))
    assert overall.precision == pytest.approx(precision_score(frame.label, frame.prediction))
    assert overall.selection_rate == pytest.approx(frame.prediction.mean())
    assert overall.tpr == pytest.approx(frame.prediction[frame.label == 1].mean())
    assert overall.fpr == pytest.approx(frame.prediction[frame.label == 0].mean())


def test_predictions_stand_in_for_a_missing_score(demo_settings: Settings) -> None:
    frame = evaluation_frame(demo_settings, CHURN, "2").drop(columns="score")
    evidence = compute_fairness(as_loaded(frame, "an upload"), model_policy(demo_settings, CHURN))
    assert (evidence.report.config.score, evidence.report.config.prediction) == (None, "prediction")
    assert evidence.source == "computed now from an upload (all 3,000 rows)"


def test_a_champion_without_evaluation_set_leaves_the_candidate_reviewable(
    small: Settings,
) -> None:
    client = MlflowClient(tracking_uri=small.tracking_uri)
    candidate_run = Registry(small.tracking_uri).get_version(SMALL_MODEL, "1").run_id
    empty_run = client.create_run(client.get_run(candidate_run).info.experiment_id).info.run_id
    champion = client.create_model_version(
        SMALL_MODEL, f"{small.artifact_root}/model", run_id=empty_run
    )
    client.set_registered_model_alias(SMALL_MODEL, "champion", champion.version)
    try:
        review = review_fairness(small, Registry(small.tracking_uri), SMALL_MODEL, "1")
    finally:
        client.delete_registered_model_alias(SMALL_MODEL, "champion")
    assert review.comparison is None and review.evidence.report.passed is False
    assert review.champion_problem.startswith(f"Champion v{champion.version}: Run {empty_run}")
    assert "has no artifact 'evaluation/evaluation.parquet'" in review.champion_problem

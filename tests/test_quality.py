"""Quality on the demo's inference log, end to end: the core, the gate frozen into a request,
the CLI, MLflow history, the Quality page and the Overview."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_core.commands import cli
from mlops_core.config import Settings
from mlops_core.errors import PermissionDenied
from mlops_core.evidence.inference_log import LogColumns
from mlops_core.evidence.quality import QualitySpec, VersionEvidence, assess_quality
from mlops_core.evidence.quality_runs import (
    latest_quality_status,
    log_quality_check,
    quality_history,
    run_quality_check,
)
from mlops_core.governance import decision_record
from mlops_core.governance.gates import evaluate_gates
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.policy import MonitoringPolicy
from mlops_core.rollout.traffic import bucket, serves_challenger
from mlops_core.stores import audit
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, REQUESTER, VIEWER, assert_no_exception, open_page, shown
from tests.test_monitoring import copy_store
from tests.test_tokens import demo_token

CHURN, CREDIT = "churn-predictor", "credit-default"


@pytest.fixture(scope="module")
def churn(demo_settings: Settings):
    return run_quality_check(demo_settings, CHURN, log=False)


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the demo store without its seeded monitoring runs, to log into."""
    return copy_store(demo_settings, tmp_path_factory.mktemp("quality-store"))


def test_v1_degrades_in_the_drifted_weeks_and_recent_weeks_await_their_labels(churn) -> None:
    frame = churn.windows_frame()
    v1 = frame[frame["version"] == "1"].reset_index(drop=True)
    assert len(v1) == 8 and set(v1["rows"]) == {2000}
    # The last two weeks end less than 14 days ago: pending, no labels, never judged.
    assert list(v1["status"]) == ["complete"] * 6 + ["labels pending"] * 2
    assert set(v1["labelled"][-2:]) == {0}
    assert v1["coverage"][:6].between(0.75, 0.85).all()
    alerted = {(a.version, a.window_start.date(), a.metric) for a in churn.alerts}
    drifted = sorted({w.start.date() for w in churn.windows if w.version == "1"})[4:6]
    assert alerted == {("1", week, m) for week in drifted for m in ("roc_auc", "log_loss")}
    assert churn.status == "alert"
    # Held to the stricter of the policy's floor (0.65) and offline roc_auc - 0.03.
    offline = churn.offline["1"]["roc_auc"]
    assert churn.thresholds("1")["roc_auc"] == pytest.approx(offline - 0.03)
    # Score drift is measured against the evaluation set once the inputs drift.
    assert v1["prediction_drift"].notna().all() and v1["label_drift"][:6].notna().all()


def test_v3_in_shadow_beats_v1_with_delong_and_a_paired_bootstrap(churn) -> None:
    comparison = churn.comparison
    assert (comparison.mode, comparison.champion, comparison.challenger) == ("shadow", "1", "3")
    assert comparison.n_pairs == comparison.n_challenger  # every labelled v3 row is paired
    auc = comparison.metric("roc_auc")
    assert auc.method == "DeLong" and auc.verdict == "better" and 0 < auc.ci_low < auc.ci_high
    assert comparison.metric("log_loss").method == "paired bootstrap"
    assert comparison.metric("log_loss").verdict == "better"
    per_week = [c for c in churn.window_comparisons if c.comparison is not None]
    assert len(per_week) == 2  # the labelled shadow weeks; the pending ones have no labels
    assert "v3 vs v1 (shadow): roc_auc +" in churn.summary


def test_credit_split_traffic_is_compared_unpaired(demo_settings: Settings) -> None:
    report = run_quality_check(demo_settings, CREDIT, log=False)
    assert report.comparison.mode == "split" and report.comparison.n_pairs is None
    assert report.comparison.metric("roc_auc").method == "unpaired bootstrap"
    v3 = [w for w in report.windows if w.version == "3"]
    # 10% of the traffic: never enough labelled rows in a week to judge v3.
    assert v3 and {w.status for w in v3} <= {"too few labels", "labels pending"}
    share = sum(w.rows for w in v3) / sum(w.rows for w in report.windows if w.start >= v3[0].start)
    assert 0.07 < share < 0.13


def test_traffic_is_split_by_a_stable_hash_of_the_request_id() -> None:
    ids = [f"cd-{i:06d}" for i in range(4000)]
    routed = [serves_challenger(i, 10) for i in ids]
    assert routed == [serves_challenger(i, 10) for i in ids]
    assert 0.08 < np.mean(routed) < 0.12
    place = bucket("cd-000001")
    assert serves_challenger("cd-000001", place + 1) and not serves_challenger("cd-000001", place)


def test_an_incomplete_window_is_never_judged_however_bad() -> None:
    """Pure assessment: a pending window with terrible metrics raises no alert."""
    start = datetime(2026, 1, 5)
    rows = []
    for week, (good, labelled) in enumerate([(True, True), (False, True)]):
        labels = np.tile([0, 1], 150)
        scores = np.where(labels == 1, 0.8, 0.2) if good else np.where(labels == 1, 0.2, 0.8)
        rows.append(
            pd.DataFrame(
                {
                    "timestamp": start + timedelta(days=7 * week, hours=1),
                    "model_version": "1",
                    "score": scores,
                    "prediction": (scores >= 0.5).astype(int),
                    "label": labels if labelled else None,
                }
            )
        )
    spec = QualitySpec(
        "classification",
        LogColumns(request_id=None),
        MonitoringPolicy(min_metrics={"roc_auc": 0.7}, label_delay_days=14),
        champion="1",
    )
    evidence = {"1": VersionEvidence({"roc_auc": 0.9})}
    period = (start, start + timedelta(days=14))
    early = assess_quality("m", pd.concat(rows), spec, evidence, period, start + timedelta(days=22))
    assert [w.status for w in early.windows] == ["complete", "labels pending"]
    assert early.alerts == [] and early.status == "ok"
    late = assess_quality("m", pd.concat(rows), spec, evidence, period, start + timedelta(days=30))
    assert [(a.metric, a.kind) for a in late.alerts] == [("roc_auc", "minimum")]


def test_the_live_comparison_gate_passes_for_v3_and_is_frozen_into_the_request(
    store: Settings,
) -> None:
    registry = Registry(store.tracking_uri)
    report = evaluate_gates(store, registry, CHURN, "3")
    gate = next(r for r in report.results if r.name == "live_comparison")
    assert gate.status == "passed", gate.reason
    assert gate.details["mode"] == "shadow" and gate.details["method"] == "DeLong"
    assert gate.details["ci_low"] > 0 and "better" in gate.reason
    # v2 has no live traffic: not evaluated, which blocks.
    v2 = next(
        r
        for r in evaluate_gates(store, registry, CHURN, "2").results
        if r.name == "live_comparison"
    )
    assert v2.status == "not_evaluated" and "no live traffic" in v2.reason
    # credit-default's policy has no live_comparison table: no such gate.
    assert all(
        r.name != "live_comparison" for r in evaluate_gates(store, registry, CREDIT, "3").results
    )
    view = request_promotion(store, registry, REQUESTER, CHURN, "3", "beats v1 in shadow")
    frozen = next(g for g in view.gates_at_request if g.name == "live_comparison")
    assert frozen.status == "passed" and frozen.details["labelled_rows"] >= 1000
    record = decision_record.to_markdown(decision_record.build_record(store, registry, view.id))
    assert "| live\\_comparison | passed |" in record and "labelled pairs" in record


def test_the_cli_exits_1_on_the_degraded_champion_and_logs_with_a_token(
    store: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("MLOPS_DATA_DIR", str(store.data_dir))
        code = cli.main(["quality", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("--model", CHURN, "--no-log")
    assert code == 1, err
    assert "BREACHED: 4 alert(s)" in out and "labels pending" in out and "DeLong" in out
    code, out, _ = run("--model", CHURN, "--no-log", "--json", "--window", "2000-01-01:")
    document = json.loads(out)
    assert (
        code == 1 and document["status"] == "alert" and document["comparison"]["mode"] == "shadow"
    )
    code, out, err = run("--model", CHURN, "--no-log", "--window", "2000-01-01:2000-02-01")
    assert code == 2 and "no rows" in err
    code, _, err = run("--model", "nope", "--no-log")
    assert code == 2 and "nope" in err and "Traceback" not in err
    code, _, err = run("--model", CHURN)
    assert code == 2 and "--no-log skips it" in err
    monkeypatch.setenv("MLOPS_TOKEN", demo_token(store, "viewer"))
    code, _, err = run("--model", CHURN)
    assert code == 2 and "needs the requester or approver role" in err
    assert quality_history(Registry(store.tracking_uri), CHURN).empty
    monkeypatch.setenv("MLOPS_TOKEN", demo_token(store, "requester"))
    code, out, err = run("--model", CHURN, "--version", "3")
    assert code == 0, err  # v3 alone meets its thresholds; v1's windows are not judged
    status = latest_quality_status(Registry(store.tracking_uri), CHURN)
    assert status.status == "ok" and "v3 vs v1 (shadow)" in status.label


def test_a_logged_check_is_a_run_with_metrics_per_window_and_a_recorded_digest(
    store: Settings, churn
) -> None:
    registry = Registry(store.tracking_uri)
    with pytest.raises(PermissionDenied):
        log_quality_check(store, registry, churn, VIEWER)
    run_id = log_quality_check(store, registry, churn, APPROVER)
    run = registry.client.get_run(run_id)
    assert run.data.tags["mlops.quality.status"] == "alert"
    assert run.data.params["champion"] == "1" and run.data.params["comparison_mode"] == "shadow"
    history = registry.client.get_metric_history(run_id, "v1.roc_auc")
    assert [m.step for m in history] == list(range(6))  # one per labelled week
    stored = Path(registry.client.download_artifacts(run_id, "quality/report.json")).read_bytes()
    assert json.loads(stored)["status"] == "alert"
    recorded = [e for e in audit.list_events(store.db_url) if e.action == "evidence_recorded"]
    assert recorded[0].details["artifacts"] == {
        "quality/report.json": hashlib.sha256(stored).hexdigest()
    }
    assert latest_quality_status(registry, CHURN).run_id == run_id


def test_quality_page_and_overview_show_the_alert_and_the_shadow_evidence(
    monkeypatch: pytest.MonkeyPatch, demo_settings: Settings
) -> None:
    env = {"MLOPS_DATA_DIR": str(demo_settings.data_dir)}
    page = open_page(monkeypatch, env, "quality.py", model=CHURN)
    assert_no_exception(page)
    assert not page.error and "more than 0.03 worse" in shown(page.warning[0])
    windows = next(d.value for d in page.dataframe if "status" in d.value.columns)
    assert (windows["status"] == "labels pending").sum() == 4
    # The metrics the policy judges fit the page; the chart has the others.
    assert {"roc_auc", "log_loss"} <= set(windows.columns) and "window_end" not in windows
    comparison = next(d.value for d in page.dataframe if "verdict" in d.value.columns)
    auc = comparison.set_index("metric").loc["roc_auc"]
    assert auc["verdict"] == "better" and auc["method"] == "DeLong" and auc["ci_low"] > 0
    log = next(b for b in page.button if b.label == "Log this check to MLflow")
    assert log.disabled  # a viewer reads quality but writes nothing to MLflow
    overview = open_page(monkeypatch, env, "overview.py")
    rows = overview.dataframe[0].value.set_index("model")
    assert rows.loc[CHURN, "quality"] == "alert"
    # The cell stays short; the alert and the shadow evidence are spelled out below it.
    alert = next(shown(w) for w in overview.warning if shown(w).startswith(f"{CHURN}: alert: v1"))
    assert "v3 vs v1 (shadow)" in alert

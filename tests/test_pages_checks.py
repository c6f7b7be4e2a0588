"""Behaviour checks on the Models and Approvals pages, on copies of the demo store.

Checks that store a report write `checks/report.json` onto the version's run. The demo's
runs keep their artifacts in the demo's folder, shared by every copy, so those tests check
a version registered here from a run of their own (`own_version`), never a demo version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from mlflow import MlflowClient
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings, load_settings
from mlops_core.demo.scenario import fluent_tracking
from mlops_core.evidence.behaviour.report import (
    CheckOutcome,
    CheckReport,
    LatencyStats,
    SandboxLimits,
)
from mlops_core.evidence.behaviour.store import stored_check_report
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.people.access import runs_model_code
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, REQUESTER, VIEWER, actor, assert_no_exception
from tests.test_promotion import copy_demo_env
from ui.charts.checks import latency_figure
from ui.checks_view import SANDBOX_NOTE, key_figures

PAGES = Path(__file__).resolve().parents[1] / "pages"
ROOT = Path(__file__).resolve().parents[1]
CREDIT = "credit-default"
CHURN = "churn-predictor"
RUN_BUTTON = "version_checks_run"
# The model's code: the slow scorer's module and the flavors' (never imported by the page).
MODEL_MODULES = ("mlops_core.demo.slow_scorer", "mlflow.sklearn", "sklearn.ensemble")


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return copy_demo_env(demo_settings, tmp_path_factory.mktemp("checks-pages"))


def own_version(env: dict[str, str], model: str, like: str, folder: Path) -> str:
    """A new version of `model` serving `like`'s logged model, registered from a run whose
    artifacts live in `folder`: checks stored on it touch nothing the demo's copies share."""
    settings = load_settings(env)
    client = MlflowClient(settings.tracking_uri)
    experiment = client.create_experiment(
        f"checks-{uuid.uuid4().hex[:8]}", artifact_location=folder.as_uri()
    )
    run = client.create_run(experiment)
    source = Registry(settings.tracking_uri).get_version(model, like)
    # MLflow looks a models:/m-… source up with the global client.
    with fluent_tracking(settings.tracking_uri):
        created = client.create_model_version(
            model, source.source, run_id=run.info.run_id, model_id=source.logged_model_id
        )
    return str(created.version)


def open_page(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], page: str, who, **query: str
) -> AppTest:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=300)
    at.session_state["actor"] = who
    at.query_params.update(query)
    at.run()
    assert_no_exception(at)
    return at


def texts(at: AppTest, kind: str) -> str:
    return re.sub(r"\\(.)", r"\1", " ".join(str(e.value) for e in getattr(at, kind)))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def hand_built_report() -> CheckReport:
    samples = tuple([4.0] * 470 + [64.0] * 30)
    return CheckReport(
        model="<b>m</b>",
        version="7",
        run_id="r",
        model_uri="models:/m/7",
        created_at="2026-12-05T08:00:00+00:00",
        input_source="the version's input example",
        rows_used=3,
        limits=SandboxLimits(300.0, 4096),
        outcomes=(CheckOutcome("determinism", "passed", "identical"),),
        deterministic=True,
        missing_values="clear_error",
        latency=LatencyStats(500, 4.0, 64.0, 64.0, 7.6, 64.0, samples),
        throughput_rows_per_s=25_000.0,
        model_size_mb=1.25,
        peak_load_memory_mb=180.0,
    )


def test_the_latency_histogram_marks_the_percentiles_and_the_gate() -> None:
    report = hand_built_report()
    figure = latency_figure(report.latency, "<a href='https://x'>m</a> v7", 50)
    assert list(figure.data[0].x) == list(report.latency.samples_ms)
    assert [shape.x0 for shape in figure.layout.shapes] == [4.0, 64.0, 64.0, 50]
    labels = [a.text for a in figure.layout.annotations]
    assert labels[-1] == "gate: p99 ≤ 50 ms" and labels[2] == "p99 64.0 ms"
    # Names from MLflow go into the title as text, not as Plotly's HTML subset.
    assert figure.layout.title.text.startswith("&lt;a href=")
    no_gate = latency_figure(report.latency, "m", None)
    assert len(no_gate.layout.shapes) == 3


def test_key_figures_say_what_was_not_measured() -> None:
    report = hand_built_report()
    figures = key_figures(report)
    assert figures["latency p99"] == "64.0 ms" and figures["throughput"] == "25,000 rows/s"
    assert figures["deterministic"] == "yes" and figures["missing values"] == "clear error"
    failed = replace(report, latency=None, deterministic=None, failure="timed out")
    assert key_figures(failed)["latency p99"] == "-" and key_figures(failed)["deterministic"] == "-"


def test_a_viewer_sees_the_slow_versions_stored_checks_without_a_run_button(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = open_page(monkeypatch, demo_env, "models", VIEWER, model=CREDIT)
    at.selectbox(key="version").set_value("2").run()
    assert "Behaviour checks" in texts(at, "markdown")
    assert SANDBOX_NOTE in texts(at, "caption")
    assert RUN_BUTTON not in {b.key for b in at.button}
    shown = metrics(at)
    assert float(shown["latency p99"].removesuffix(" ms")) > 50
    assert shown["deterministic"] == "yes"
    # The histogram, with the policy's p99 limit drawn on it.
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert "gate: p99 ≤ 50 ms" in [a["text"] for a in chart["layout"]["annotations"]]
    at.selectbox(key="version").set_value("3").run()
    assert float(metrics(at)["latency p99"].removesuffix(" ms")) < 50


def test_a_requester_has_no_run_button_and_a_version_without_checks_says_so(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    version = own_version(env, CHURN, "1", tmp_path)
    at = open_page(monkeypatch, env, "models", REQUESTER, model=CHURN)
    assert str(at.selectbox(key="version").value) == version  # the newest is shown first
    assert RUN_BUTTON not in {b.key for b in at.button}
    assert "No behaviour checks stored for this version — run them (an approver can)" in texts(
        at, "info"
    )


def test_an_approver_runs_the_checks_and_the_page_shows_the_stored_report(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    version = own_version(env, CHURN, "1", tmp_path)
    at = open_page(monkeypatch, env, "models", APPROVER, model=CHURN)
    assert str(at.selectbox(key="version").value) == version  # the newest is shown first
    assert "No behaviour checks stored" in texts(at, "info")
    at.button(key=RUN_BUTTON).click().run()
    assert_no_exception(at)
    assert f"Behaviour checks of {CHURN} v{version} stored as evidence." in texts(at, "success")
    stored = stored_check_report(load_settings(env), CHURN, version)
    assert stored.report is not None and stored.report.completed, stored.why_not
    assert "sha256 matches audit event" in stored.source
    assert metrics(at)["deterministic"] == "yes"
    assert at.get("plotly_chart")


def test_the_approvals_page_shows_the_requests_checks_and_runs_them_for_approvers(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    settings = load_settings(env)
    registry = Registry(settings.tracking_uri)
    made = request_promotion(settings, registry, REQUESTER, CREDIT, "2", "best ROC AUC")
    run_button = f"checks_{made.id}_run"
    at = open_page(monkeypatch, env, "approvals", APPROVER)
    assert "Behaviour checks" in texts(at, "markdown")
    assert float(metrics(at)["latency p99"].removesuffix(" ms")) > 50
    assert run_button in {b.key for b in at.button}
    mine = open_page(monkeypatch, env, "approvals", REQUESTER)
    assert run_button not in {b.key for b in mine.button}
    assert "Behaviour checks" in texts(mine, "markdown")


PAGE_PROCESS = textwrap.dedent(
    """
    import json, sys
    from streamlit.testing.v1 import AppTest
    from mlops_core.identity import Actor

    at = AppTest.from_file(sys.argv[1], default_timeout=300)
    at.session_state["actor"] = Actor("approver", frozenset({"approver"}))
    at.query_params.update({"model": sys.argv[2]})
    at.run()
    assert str(at.selectbox(key="version").value) == sys.argv[3]
    at.button(key="version_checks_run").click().run()
    print(json.dumps({
        "exceptions": [str(e.value) for e in at.exception],
        "successes": [str(e.value) for e in at.success],
        "loaded": [m for m in sys.argv[4:] if m in sys.modules],
    }))
    """
)


def test_the_page_process_never_imports_the_models_code(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Running the slow scorer's checks from the page loads it only in the sandbox."""
    version = own_version(env, CREDIT, "2", tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PAGE_PROCESS,
            str(PAGES / "models.py"),
            CREDIT,
            version,
            *MODEL_MODULES,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["exceptions"] == [] and found["successes"], found
    assert found["loaded"] == []
    stored = stored_check_report(load_settings(env), CREDIT, version).report
    assert stored is not None and stored.latency is not None and stored.latency.p99_ms > 50


def test_only_approvers_and_admins_may_run_a_models_code_from_the_panel() -> None:
    assert runs_model_code(actor("admin")) and runs_model_code(APPROVER)
    assert not runs_model_code(REQUESTER) and not runs_model_code(VIEWER)
    assert not runs_model_code(None)

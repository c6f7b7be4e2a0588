"""The docker-compose topology without Docker: PostgreSQL, `mlflow server` serving
artifacts, the demo seeded through the server's HTTP API, and the panel on top of them.

Select with `pytest -m integration` (or deselect with `-m "not integration"`).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import inspect

from mlops_core.demo.data import SPECS
from mlops_core.demo.scenario import inference_table
from mlops_core.stores.db import get_engine
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import load_run_artifact_frame
from tests.apptest import app_test, assert_no_exception, shown
from tests.browser import chromium, sign_in, wait_for_app
from tests.servers import free_port, streamlit_app
from tests.topology import Topology, example_env, load_compose, local_topology
from ui.navigation import PAGES

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

MODELS = [spec.name for spec in SPECS]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with local_topology(tmp_path_factory.mktemp("topology")) as running:
        yield running


@pytest.fixture(scope="module")
def panel_url(topology: Topology) -> Iterator[str]:
    with streamlit_app(topology.panel_env) as base:
        yield base


def test_demo_goes_through_the_server_into_postgres_and_served_artifacts(
    topology: Topology,
) -> None:
    assert all(f"registered {name} v3" in topology.demo_output for name in MODELS)
    registry = Registry(topology.tracking_uri)
    models = registry.list_models(lambda _name: "champion")
    assert [m.name for m in models] == MODELS
    assert [m.champion.version for m in models if m.champion] == ["1", "1"]
    assert inspect(get_engine(topology.mlflow_db_url)).has_table("registered_models")

    training = [e for e in registry.list_experiments() if e.name.startswith("training/")]
    assert len(training) == len(MODELS)
    assert all(e.artifact_location.startswith("mlflow-artifacts:") for e in training)
    references = list(topology.artifacts_dir.rglob("reference/reference.parquet"))
    assert len(references) == 3 * len(MODELS)
    # Nothing fell back to the embedded stores in the panel's data folder: the demo accounts
    # went into the panel database on PostgreSQL; only the policy and the audit log's
    # anchors (kept outside the database on purpose) are files.
    names = sorted(p.name for p in topology.data_dir.iterdir())
    assert names == ["audit-anchors.jsonl", "policy.toml"]

    run_id = registry.version_by_alias(MODELS[0]).run_id
    evaluation = load_run_artifact_frame(registry.client, run_id, "evaluation/evaluation.parquet")
    assert {"gender", "label", "score"} <= set(evaluation.frame.columns)

    inference = inspect(get_engine(topology.panel_env["MLOPS_INFERENCE_DB_URL"]))
    assert all(inference.has_table(inference_table(name)) for name in MODELS)
    assert inspect(get_engine(topology.panel_env["MLOPS_DB_URL"])).has_table("alembic_version")


def test_mlflow_answers_the_panel_by_service_name_and_refuses_other_hosts(
    topology: Topology,
) -> None:
    # The server runs with the compose file's --allowed-hosts.
    url = f"{topology.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(url, headers={"Host": "mlflow:5000"}, timeout=10).status_code == 200
    refused = requests.get(url, headers={"Host": "attacker.example"}, timeout=10)
    assert refused.status_code == 403


def _healthcheck_passes(service: str, compose_port: int, port: int) -> bool:
    kind, *command = load_compose(example_env())["services"][service]["healthcheck"]["test"]
    assert kind == "CMD" and command[:2] == ["python", "-c"]
    code = command[2].replace(f"127.0.0.1:{compose_port}/", f"127.0.0.1:{port}/")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_compose_healthchecks_pass_on_the_running_processes_only(
    topology: Topology, panel_url: str
) -> None:
    assert _healthcheck_passes("mlflow", 5000, urlsplit(topology.tracking_uri).port)
    assert _healthcheck_passes("panel", 8501, urlsplit(panel_url).port)
    assert not _healthcheck_passes("panel", 8501, free_port())


def test_every_page_renders_with_data_from_the_server(
    monkeypatch: pytest.MonkeyPatch, topology: Topology
) -> None:
    at = app_test(monkeypatch, topology.panel_env).run()
    assert_no_exception(at)
    overview = at.dataframe[0].value
    assert list(overview.model) == MODELS and list(overview.champion) == ["v1 (alias champion)"] * 2
    for spec in PAGES:
        at.switch_page(spec.file).run()
        assert_no_exception(at)
        assert not at.error, (spec.key, [shown(e) for e in at.error])


def test_panel_process_answers_its_health_check_and_serves_the_app(panel_url: str) -> None:
    health = requests.get(f"{panel_url}/_stcore/health", timeout=10)
    assert health.status_code == 200 and health.text == "ok"
    page = requests.get(panel_url, timeout=10)
    assert page.status_code == 200 and 'id="root"' in page.text


@pytest.mark.browser
def test_admin_signs_in_to_the_panel_process_and_opens_every_page(panel_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, panel_url, "admin", "admin-demo")
        page.get_by_test_id("stDataFrame").first.wait_for()
        # Signing in lands on the first page; the others are opened from the sidebar.
        for index, spec in enumerate(PAGES):
            if index:
                page.get_by_test_id("stSidebarNavLink").filter(has_text=spec.title).click()
                wait_for_app(page)
            assert page.get_by_test_id("stException").count() == 0, spec.key
            assert page.get_by_test_id("stAlertContentError").count() == 0, spec.key

"""docker-compose.yml, Dockerfile and .env.example describe a topology that can start.

There is no Docker engine here, so the file is checked as `docker compose config` would
render it, and its commands are parsed by the very CLIs that will run them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mlflow.cli import cli as mlflow_cli
from sqlalchemy.engine import make_url
from streamlit.web.cli import main as streamlit_cli

from mlops_core.commands.cli import build_parser
from mlops_core.config import load_settings
from tests.topology import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    compose_option,
    compose_variables,
    env_file,
    example_env,
    load_compose,
)

ROOT = COMPOSE_FILE.parent
PASSWORD = "s3cret-Only-in-env"
APP_PASSWORD = "panel-pw-Only-in-env"
AUDIT_KEY = "audit-key-Only-in-env-0123456789abcdef"
REQUIRED = {"POSTGRES_PASSWORD": PASSWORD, "PANEL_DB_PASSWORD": APP_PASSWORD}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(example_env(**REQUIRED, MLOPS_AUDIT_KEY=AUDIT_KEY))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _healthcheck(service: dict[str, Any]) -> str:
    kind, *command = service["healthcheck"]["test"]
    assert kind in ("CMD", "CMD-SHELL")
    return " ".join(command)


def test_the_services_share_one_image_built_from_the_repo(services: dict) -> None:
    assert set(services) == {"postgres", "mlflow", "migrate", "panel", "worker", "demo"}
    assert services["panel"]["build"] == "."
    # Only one service builds the tag; the others run it (parallel builds would collide).
    assert [name for name, s in services.items() if "build" in s] == ["panel"]
    images = {services[n]["image"] for n in ("mlflow", "migrate", "panel", "worker", "demo")}
    assert len(images) == 1
    assert services["demo"]["profiles"] == ["demo"] and services["demo"]["restart"] == "no"
    assert services["migrate"]["restart"] == "no"


def test_each_long_running_service_has_a_healthcheck_on_its_health_endpoint(
    services: dict,
) -> None:
    assert "pg_isready" in _healthcheck(services["postgres"])
    assert "http://127.0.0.1:5000/health" in _healthcheck(services["mlflow"])
    assert "http://127.0.0.1:8501/_stcore/health" in _healthcheck(services["panel"])
    assert "http://127.0.0.1:8502/healthz" in _healthcheck(services["worker"])


def test_services_start_once_what_they_need_is_healthy_or_done(services: dict) -> None:
    healthy, done = "service_healthy", "service_completed_successfully"
    needs = {
        "postgres": {},
        "mlflow": {"postgres": healthy},
        "migrate": {"postgres": healthy},
        # The panel starts on a migrated schema: its own role may not migrate it.
        "panel": {"postgres": healthy, "mlflow": healthy, "migrate": done},
        "worker": {"postgres": healthy, "mlflow": healthy, "migrate": done},
        "demo": {"postgres": healthy, "mlflow": healthy, "panel": healthy},
    }
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert {n: d["condition"] for n, d in depends_on.items()} == needs[name], name


def test_state_lives_on_named_volumes(compose: dict) -> None:
    declared = set(compose["volumes"])
    services = compose["services"]
    mounts = {n: dict(v.split(":")[:2] for v in s.get("volumes", [])) for n, s in services.items()}
    assert {"postgres-data", "mlflow-artifacts", "panel-data"} <= declared
    assert mounts["postgres"]["postgres-data"] == "/var/lib/postgresql/data"
    artifacts = compose_option(services["mlflow"]["command"], "artifacts-destination")
    assert mounts["mlflow"]["mlflow-artifacts"] == artifacts
    data_dir = services["panel"]["environment"]["MLOPS_DATA_DIR"]
    assert mounts["panel"]["panel-data"] == mounts["demo"]["panel-data"] == data_dir
    for service_mounts in mounts.values():
        named = {source for source in service_mounts if not source.startswith(".")}
        assert named <= declared


def test_mlflow_server_options_parse_with_the_pinned_mlflow(
    services: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = services["mlflow"]
    assert mlflow["command"][:2] == ["mlflow", "server"]
    for name, value in mlflow["environment"].items():
        monkeypatch.setenv(name, value)
    params = mlflow_cli.commands["server"].make_context("server", mlflow["command"][2:]).params
    assert params["serve_artifacts"] and params["host"] == "0.0.0.0" and params["port"] == 5000
    # The security middleware refuses Host headers not listed; the panel sends mlflow:5000.
    assert "mlflow:5000" in params["allowed_hosts"].split(",")
    backend = make_url(params["backend_store_uri"])
    assert (backend.drivername, backend.host, backend.database) == (
        "postgresql+psycopg2",
        "postgres",
        "mlflow",
    )
    assert backend.password == PASSWORD
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_panel_and_demo_settings_name_mlflow_and_postgres_by_service(services: dict) -> None:
    for name in ("panel", "demo"):
        env = services[name]["environment"]
        settings = load_settings(env)
        assert settings.tracking_uri == "http://mlflow:5000"
        for url, database in ((settings.db_url, "panel"), (settings.inference_db_url, "inference")):
            parsed = make_url(url)
            assert (parsed.host, parsed.database, parsed.username, parsed.password) == (
                "postgres",
                database,
                "panel_app",
                APP_PASSWORD,
            )
        # Keyed audit chain; the owner's password never reaches the panel or the demo.
        assert settings.audit_key == AUDIT_KEY and settings.db_migrate_url is None
        assert not any(PASSWORD in value for value in env.values())


def test_migrate_runs_as_the_owner_and_grants_the_panels_role(services: dict) -> None:
    migrate = services["migrate"]
    args = build_parser(migrate["command"][3:]).parse_args(migrate["command"][3:])
    assert migrate["command"][:3] == ["python", "-m", "mlops_core"] and args.command == "migrate"
    settings = load_settings(migrate["environment"])
    owner = make_url(settings.migrate_url)
    assert (owner.username, owner.password, owner.database) == ("mlops", PASSWORD, "panel")
    assert settings.db_url == services["panel"]["environment"]["MLOPS_DB_URL"]
    assert settings.db_app_role == "panel_app"


def test_demo_command_parses_with_the_panel_cli(services: dict) -> None:
    command = services["demo"]["command"]
    assert command[:3] == ["python", "-m", "mlops_core"]
    args = build_parser(command[3:]).parse_args(command[3:])
    assert args.command == "demo" and args.sweep_runs == 50


def test_worker_command_parses_and_connects_as_the_panel(services: dict) -> None:
    worker = services["worker"]
    command = worker["command"]
    args = build_parser(command[3:]).parse_args(command[3:])
    assert (args.command, args.host, args.port) == ("worker", "0.0.0.0", 8502)
    settings = load_settings(worker["environment"])
    assert settings.db_url == services["panel"]["environment"]["MLOPS_DB_URL"]
    assert settings.db_migrate_url is None and settings.tracking_uri == "http://mlflow:5000"
    assert worker["ports"] == ["127.0.0.1:8502:8502"]


def test_init_script_creates_every_database_the_services_use(services: dict) -> None:
    init = next(v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (ROOT / init.split(":")[0]).read_text()
    created = set(re.findall(r"^CREATE DATABASE (\w+)\b", script, re.M))
    used = {
        make_url(url).database
        for url in (
            services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"],
            services["panel"]["environment"]["MLOPS_DB_URL"],
            services["panel"]["environment"]["MLOPS_INFERENCE_DB_URL"],
        )
    }
    assert used == created == {"mlflow", "panel", "inference"}
    # The panel's role, with its password read from the environment compose gives postgres.
    assert re.search(r"^\\getenv (\w+) PANEL_DB_PASSWORD$", script, re.M)
    assert re.search(r"^CREATE ROLE panel_app LOGIN PASSWORD :'\w+';$", script, re.M)
    assert services["postgres"]["environment"]["PANEL_DB_PASSWORD"] == APP_PASSWORD


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_no_secret_is_committed(compose: dict) -> None:
    # Every password in a connection URL, and every secret-named setting, is the variable.
    urls = [make_url(s) for s in _strings(compose) if re.match(r"[\w+]+://", s)]
    passwords = {url.password for url in urls if url.password is not None}
    assert passwords == {PASSWORD, APP_PASSWORD}
    secrets = re.findall(
        r"^\s*\w*(?:PASSWORD|SECRET|TOKEN|KEY)\w*:\s*(.*)$", COMPOSE_FILE.read_text(), re.M
    )
    assert secrets and all(value.startswith("${") for value in secrets)
    # Without any one of the secrets compose refuses to start, naming the variable.
    secret_values = {**REQUIRED, "MLOPS_AUDIT_KEY": AUDIT_KEY}
    for name in secret_values:
        assert env_file(ENV_EXAMPLE)[name] == ""
        with pytest.raises(ValueError, match=name):
            load_compose({**env_file(ENV_EXAMPLE), **secret_values, name: ""})
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored and ".streamlit/secrets.toml" in ignored
    docker_ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", "**/secrets.toml", ".mlops/", ".git/"} <= set(docker_ignored)


def test_env_example_lists_every_variable_compose_uses() -> None:
    used = compose_variables(COMPOSE_FILE.read_text())
    assert used and used == set(env_file(ENV_EXAMPLE))


def test_dockerfile_installs_requirements_and_serves_the_panel_on_all_interfaces() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert re.search(r"^RUN pip install -r requirements\.txt", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    program, run, *args = json.loads(command)
    assert (program, run) == ("streamlit", "run")
    params = streamlit_cli.commands["run"].make_context("run", args).params
    assert params["target"] == "app.py" and params["server_address"] == "0.0.0.0"
    assert params["server_port"] == 8501


def test_docs_name_the_commands_compose_needs() -> None:
    guide = (ROOT / "README.md").read_text()
    for command in ("cp .env.example .env", "docker compose up", "docker compose run --rm demo"):
        assert command in guide

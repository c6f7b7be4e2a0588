"""The CLI as a CI pipeline runs it: a real process, exit codes, JSON on stdout."""

import argparse
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from mlops_core.commands.catalog import COMMANDS
from mlops_core.config import Settings
from mlops_core.people.auth import authenticate
from tests.conftest import settings_for

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_core", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_models_json_lists_versions_aliases_and_champion(demo_env: dict[str, str]) -> None:
    result = run_cli("models", "--json", env=demo_env)
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)}
    churn = models["churn-predictor"]
    assert churn["champion"] == "1"
    assert [(v["version"], v["aliases"]) for v in churn["versions"]] == [
        ("3", []),
        ("2", []),
        ("1", ["champion"]),
    ]


def test_models_table_is_readable(demo_env: dict[str, str]) -> None:
    result = run_cli("models", env=demo_env)
    assert result.returncode == 0
    assert "churn-predictor" in result.stdout and "v1[champion]" in result.stdout


def test_demo_again_adds_nothing(demo_env: dict[str, str]) -> None:
    result = run_cli("demo", "--if-empty", env=demo_env)
    assert result.returncode == 0
    assert "already has models" in result.stdout


def test_a_reader_that_leaves_the_pipe_gets_no_traceback(demo_env: dict[str, str]) -> None:
    # `python -m mlops_core models --json | head -c 1`: the reader is gone before the end.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mlops_core", "models", "--json"],
            cwd=ROOT,
            env={**os.environ, **demo_env},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_unreachable_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    result = run_cli("models", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Cannot reach the MLflow tracking server")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("setting", ["MLFLOW_TRACKING_URI", "MLOPS_DB_URL"])
def test_invalid_setting_is_named(tmp_path: Path, setting: str) -> None:
    result = run_cli("models", env={"MLOPS_DATA_DIR": str(tmp_path), setting: "nonsense::"})
    assert result.returncode == 2
    assert setting in result.stderr and "Traceback" not in result.stderr


def test_postgresql_without_an_audit_key_refuses_to_start(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_DB_URL": "postgresql://panel@127.0.0.1:1/p"}
    result = run_cli("audit", "verify", env=env)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: MLOPS_AUDIT_KEY is required when MLOPS_DB_URL is")


def test_migrate_brings_the_panel_database_to_the_newest_schema(tmp_path: Path) -> None:
    result = run_cli("migrate", env={"MLOPS_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The panel database is at the newest schema.\n"
    assert (tmp_path / "panel.db").is_file()


def test_empty_store_explains_how_to_load_the_demo(tmp_path: Path, demo_settings: Settings) -> None:
    result = run_cli("models", env={"MLOPS_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "python -m mlops_core demo" in result.stdout


def test_users_add_stores_a_hash_and_the_account_can_sign_in(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path)}
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_core",
            "users",
            "add",
            "alice",
            "--role",
            "approver",
            "--password-stdin",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        input="s3cret-pass\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    assert b"s3cret-pass" not in (tmp_path / "panel.db").read_bytes()
    listed = json.loads(run_cli("users", "list", "--json", env=env).stdout)
    assert listed == [
        {
            "username": "alice",
            "roles": ["approver"],
            "email": None,
            "service_account": False,
            "disabled": False,
        }
    ]
    settings = settings_for(tmp_path)
    assert authenticate(settings, "alice", "s3cret-pass").username == "alice"


def test_users_add_without_a_token_is_refused_once_accounts_exist(
    demo_env: dict[str, str],
) -> None:
    result = run_cli(
        "users",
        "add",
        "approver",
        "--role",
        "admin",
        "--keep-password",
        "--as",
        "requester",
        env=demo_env,
    )
    assert result.returncode == 2
    assert "`users add` changes state, so it needs an access token" in result.stderr


def test_help_lists_every_command_without_importing_mlflow_or_pandas() -> None:
    probe = (
        "import sys\n"
        "from mlops_core.commands.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('mlflow', 'pandas', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]")
    assert all(name in result.stdout for name in COMMANDS)


def test_each_command_is_registered_by_the_module_the_catalog_names() -> None:
    for module in {module for module, _ in COMMANDS.values()}:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        import_module(f"mlops_core.commands.{module}").register(subparsers)
        owned = {name for name, (owner, _) in COMMANDS.items() if owner == module}
        assert set(subparsers.choices) == owned, module

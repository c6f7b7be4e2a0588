from pathlib import Path

import pytest

from mlops_core.config import load_settings
from mlops_core.errors import ConfigError

PG_URL = "postgresql+psycopg2://panel:secret@postgres:5432/panel"
AUDIT_KEY = "config-test-audit-key-0123456789abcdef"


def test_zero_configuration_puts_everything_under_one_data_folder(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.db_url == f"sqlite:///{tmp_path / 'panel.db'}"
    assert settings.artifact_root == (tmp_path / "artifacts").as_uri()
    assert settings.users_file == tmp_path / "users.toml"
    assert settings.token_max_days == 90
    assert settings.session_hours == 8
    assert settings.policy_file is None
    assert settings.is_embedded_tracking
    assert settings.audit_key is None and settings.audit_key_file == tmp_path / "audit.key"
    assert settings.audit_anchor_file == tmp_path / "audit-anchors.jsonl"


def test_a_teams_own_sqlite_store_is_not_the_panels_embedded_store(tmp_path: Path) -> None:
    # Runs the panel logs into a team's store keep their artifacts where the team keeps
    # everyone's, not in the panel's data folder.
    team = load_settings(
        {"MLOPS_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/t.db"}
    )
    assert not team.is_embedded_tracking
    own = load_settings(
        {"MLOPS_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    )
    assert own.is_embedded_tracking


def test_default_data_folder_is_dot_mlops_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).data_dir == tmp_path / ".mlops"


def test_production_settings_point_at_a_server_and_postgresql(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "MLOPS_DATA_DIR": str(tmp_path),
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLOPS_DB_URL": PG_URL,
            "MLOPS_AUDIT_KEY": AUDIT_KEY,
        }
    )
    assert settings.tracking_uri == "http://mlflow:5000"
    assert not settings.is_embedded_tracking
    assert settings.db_url.startswith("postgresql+psycopg2://")


def test_postgresql_without_an_explicit_audit_key_refuses_to_start(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_DB_URL": PG_URL}
    with pytest.raises(ConfigError, match="MLOPS_AUDIT_KEY is required .* MLOPS_AUDIT_KEY_FILE"):
        load_settings(env)
    key_file = tmp_path / "secret"
    key_file.write_text(AUDIT_KEY)
    settings = load_settings({**env, "MLOPS_AUDIT_KEY_FILE": str(key_file)})
    assert settings.audit_key is None and settings.audit_key_file == key_file


def test_migrations_may_run_as_the_owner_of_the_same_database(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_DB_URL": PG_URL, "MLOPS_AUDIT_KEY": AUDIT_KEY}
    alone = load_settings(env)
    assert alone.migrate_url == PG_URL and alone.db_app_role is None
    owner_url = PG_URL.replace("panel:secret", "owner:other")
    split = load_settings({**env, "MLOPS_DB_MIGRATE_URL": owner_url})
    assert split.migrate_url == owner_url and split.db_app_role == "panel"
    with pytest.raises(ConfigError, match="MLOPS_DB_MIGRATE_URL must name the same database"):
        load_settings({**env, "MLOPS_DB_MIGRATE_URL": owner_url.replace("/panel", "/other")})
    # The embedded default has no roles.
    assert load_settings({"MLOPS_DATA_DIR": str(tmp_path)}).db_app_role is None


def test_the_audit_key_is_never_shown(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_AUDIT_KEY": AUDIT_KEY})
    assert settings.audit_key == AUDIT_KEY and AUDIT_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLFLOW_TRACKING_URI", "ftp://nowhere"),
        ("MLOPS_DB_URL", "not a url"),
        ("MLOPS_POLICY_FILE", "/does/not/exist.toml"),
        ("MLOPS_AUDIT_KEY", "too-short"),
        ("MLOPS_AUDIT_KEY_FILE", "/does/not/exist.key"),
        ("MLOPS_DB_MIGRATE_URL", "not a url"),
        ("MLOPS_TOKEN_MAX_DAYS", "0"),
        ("MLOPS_TOKEN_MAX_DAYS", "ninety"),
        ("MLOPS_SESSION_HOURS", "0"),
        ("MLOPS_SESSION_HOURS", "-1"),
        ("MLOPS_SESSION_HOURS", "721"),
        ("MLOPS_SESSION_HOURS", "8h"),
    ],
)
def test_invalid_setting_fails_with_its_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({"MLOPS_DATA_DIR": str(tmp_path), name: value})


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "oops"
    file.write_text("x")
    with pytest.raises(ConfigError, match="MLOPS_DATA_DIR"):
        load_settings({"MLOPS_DATA_DIR": str(file)})

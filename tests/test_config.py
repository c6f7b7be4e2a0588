from pathlib import Path

import pytest

from mlops_core.config import load_settings
from mlops_core.errors import ConfigError


def test_zero_configuration_puts_everything_under_one_data_folder(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.db_url == f"sqlite:///{tmp_path / 'panel.db'}"
    assert settings.artifact_root == (tmp_path / "artifacts").as_uri()
    assert settings.users_file == tmp_path / "users.toml"
    assert settings.token_max_days == 90
    assert settings.policy_file is None
    assert settings.is_embedded_tracking


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
            "MLOPS_DB_URL": "postgresql+psycopg2://panel:secret@postgres:5432/panel",
        }
    )
    assert settings.tracking_uri == "http://mlflow:5000"
    assert not settings.is_embedded_tracking
    assert settings.db_url.startswith("postgresql+psycopg2://")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLFLOW_TRACKING_URI", "ftp://nowhere"),
        ("MLOPS_DB_URL", "not a url"),
        ("MLOPS_POLICY_FILE", "/does/not/exist.toml"),
        ("MLOPS_TOKEN_MAX_DAYS", "0"),
        ("MLOPS_TOKEN_MAX_DAYS", "ninety"),
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

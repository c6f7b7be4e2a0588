"""Settings from environment variables, with embedded defaults under one data folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mlops_core.errors import ConfigError

DEFAULT_DATA_DIR = ".mlops"
# Access tokens for the CLI expire after at most this many days (MLOPS_TOKEN_MAX_DAYS).
DEFAULT_TOKEN_MAX_DAYS = 90
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    tracking_uri: str
    artifact_root: str
    db_url: str
    policy_file: Path | None
    inference_db_url: str
    users_file: Path
    access_file: Path
    token_max_days: int = DEFAULT_TOKEN_MAX_DAYS

    @property
    def is_embedded_tracking(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")


def _check_db_url(name: str, value: str) -> str:
    try:
        make_url(value)
    except ArgumentError as exc:
        raise ConfigError(f"{name} is not a valid SQLAlchemy URL: {value!r} ({exc})") from None
    return value


def _check_tracking_uri(value: str) -> str:
    scheme = urlparse(value).scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI has an unsupported scheme {scheme or '(none)'!r} in {value!r}; "
            "use a server URL (http://host:5000) or a database URI (sqlite:///path/mlflow.db)."
        )
    return value


def _days_setting(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= 3650:
        raise ConfigError(f"{name} must be a whole number of days from 1 to 3650, not {value!r}.")
    return int(value)


def _path_setting(env: Mapping[str, str], name: str, default: Path) -> Path:
    return Path(env.get(name) or default).expanduser().resolve()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; every default lives under MLOPS_DATA_DIR so zero configuration works."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("MLOPS_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"MLOPS_DATA_DIR must be a folder, but {data_dir} is a file.")
    tracking_uri = _check_tracking_uri(
        env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir / 'mlflow.db'}"
    )
    db_url = _check_db_url(
        "MLOPS_DB_URL", env.get("MLOPS_DB_URL") or f"sqlite:///{data_dir / 'panel.db'}"
    )
    inference_db_url = _check_db_url(
        "MLOPS_INFERENCE_DB_URL",
        env.get("MLOPS_INFERENCE_DB_URL") or f"sqlite:///{data_dir / 'inference.db'}",
    )
    policy_value = env.get("MLOPS_POLICY_FILE")
    if policy_value:
        policy_file: Path | None = Path(policy_value).expanduser().resolve()
        if not policy_file.is_file():
            raise ConfigError(f"MLOPS_POLICY_FILE points to {policy_file}, which is not a file.")
    else:
        default_policy = data_dir / "policy.toml"
        policy_file = default_policy if default_policy.is_file() else None
    return Settings(
        data_dir=data_dir,
        tracking_uri=tracking_uri,
        artifact_root=env.get("MLOPS_ARTIFACT_ROOT") or (data_dir / "artifacts").as_uri(),
        db_url=db_url,
        policy_file=policy_file,
        inference_db_url=inference_db_url,
        users_file=_path_setting(env, "MLOPS_USERS_FILE", data_dir / "users.toml"),
        access_file=_path_setting(env, "MLOPS_ACCESS_FILE", data_dir / "access.toml"),
        token_max_days=_days_setting(env, "MLOPS_TOKEN_MAX_DAYS", DEFAULT_TOKEN_MAX_DAYS),
    )


def ensure_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)

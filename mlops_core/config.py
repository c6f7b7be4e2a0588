"""Settings from environment variables, with embedded defaults under one data folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mlops_core.errors import ConfigError
from mlops_core.redaction import redact

DEFAULT_DATA_DIR = ".mlops"
DEFAULT_QUERY_TIMEOUT_SECONDS = 30
# 32 characters of secrets.token_urlsafe carry 192 bits: more than HMAC-SHA256 needs.
MIN_AUDIT_KEY_CHARS = 32
MAKE_AUDIT_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# Access tokens for the CLI expire after at most this many days (MLOPS_TOKEN_MAX_DAYS).
DEFAULT_TOKEN_MAX_DAYS = 90
# A panel sign-in lasts this many hours, across reloads and tabs (MLOPS_SESSION_HOURS).
DEFAULT_SESSION_HOURS = 8
# A month: a longer-lived browser cookie is a standing credential nobody remembers holding.
MAX_SESSION_HOURS = 720
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")


@dataclass(frozen=True)
class DataLimits:
    """How much one data file may expand to in memory; checked before it is loaded.

    A few hundred kilobytes of Parquet can hold a hundred million rows, so the file size
    alone protects nothing: the row count and the estimated size in memory are checked
    from the file's metadata first.
    """

    max_rows: int = 10_000_000
    max_megabytes: int = 4_096


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
    # MLOPS_DB_MIGRATE_URL: the same database as the schema's owner, when the panel's own
    # user (db_url) may not change the schema; None when one user does both.
    db_migrate_url: str | None
    # The secret keying the audit chain: MLOPS_AUDIT_KEY, else read from audit_key_file.
    audit_key: str | None = field(repr=False)
    audit_key_file: Path
    audit_anchor_file: Path
    token_max_days: int = DEFAULT_TOKEN_MAX_DAYS
    session_hours: int = DEFAULT_SESSION_HOURS

    @property
    def is_embedded_tracking(self) -> bool:
        """The tracking store is the panel's own (``sqlite:///<data folder>/mlflow.db``): only
        then do runs the panel creates keep their artifacts under `artifact_root`. A team's
        store, embedded or behind a server, keeps them where it keeps everyone's."""
        url = make_url(self.tracking_uri) if self.tracking_uri.startswith("sqlite:") else None
        if url is None or not url.database:
            return False
        return Path(url.database).expanduser().resolve() == self.data_dir / "mlflow.db"

    @property
    def migrate_url(self) -> str:
        """Where migrations run: the owner's URL when given, else the panel's own."""
        return self.db_migrate_url or self.db_url

    @property
    def db_app_role(self) -> str | None:
        """The PostgreSQL role the panel connects as, when migrations run as another one:
        migrations grant it what the panel needs and nothing more."""
        app, owner = make_url(self.db_url), make_url(self.migrate_url)
        if app.get_backend_name() != "postgresql" or app.username == owner.username:
            return None
        return app.username


def _check_db_url(name: str, value: str) -> str:
    try:
        make_url(value)
    except (ArgumentError, ValueError) as exc:
        # A port that is not a number surfaces as a ValueError from the URL parser.
        raise ConfigError(
            f"{name} is not a valid database URL: {redact(value)!r} ({redact(str(exc))})"
        ) from None
    return value


def _check_tracking_uri(value: str) -> str:
    parsed = urlparse(value)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI has an unsupported scheme {scheme or '(none)'!r} in "
            f"{redact(value)!r}; use a server URL (http://host:5000) or a database URI "
            "(sqlite:///path/mlflow.db)."
        )
    if scheme in ("http", "https"):
        try:
            parsed.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise ConfigError(
                f"MLFLOW_TRACKING_URI has a port that is not a number: {redact(value)!r}."
            ) from None
    elif scheme not in ("file", "databricks"):
        _check_db_url("MLFLOW_TRACKING_URI", value)
    return value


def _database(url: str) -> tuple[str, str | None, int | None, str | None]:
    parsed = make_url(url)
    return parsed.get_backend_name(), parsed.host, parsed.port, parsed.database


def _migrate_url(env: Mapping[str, str], db_url: str) -> str | None:
    value = env.get("MLOPS_DB_MIGRATE_URL") or None
    if value is None:
        return None
    if _database(_check_db_url("MLOPS_DB_MIGRATE_URL", value)) != _database(db_url):
        raise ConfigError(
            "MLOPS_DB_MIGRATE_URL must name the same database as MLOPS_DB_URL; only the user "
            "and password may differ."
        )
    return value


def _audit_key(env: Mapping[str, str], db_url: str) -> str | None:
    """MLOPS_AUDIT_KEY; on PostgreSQL a key (or key file) must be given explicitly."""
    key = env.get("MLOPS_AUDIT_KEY") or None
    if key is not None and len(key) < MIN_AUDIT_KEY_CHARS:
        raise ConfigError(
            f"MLOPS_AUDIT_KEY is too short: use at least {MIN_AUDIT_KEY_CHARS} random "
            f"characters, e.g. from {MAKE_AUDIT_KEY}"
        )
    explicit = key is not None or bool(env.get("MLOPS_AUDIT_KEY_FILE"))
    if not explicit and make_url(db_url).get_backend_name() == "postgresql":
        # A key file made on first use suits one machine; replicas of a production panel
        # must share one key, managed as a secret and kept out of the panel database.
        raise ConfigError(
            "MLOPS_AUDIT_KEY is required when MLOPS_DB_URL is PostgreSQL: set it (or "
            "MLOPS_AUDIT_KEY_FILE, a file holding it) to the same secret on every replica, "
            f"e.g. from {MAKE_AUDIT_KEY}"
        )
    return key


def _existing_file(env: Mapping[str, str], name: str, default: Path) -> Path:
    """A file setting that must exist when it is given; the default may not exist yet."""
    if not env.get(name):
        return default
    path = _path_setting(env, name, default)
    if not path.is_file():
        raise ConfigError(f"{name} points to {path}, which is not a file.")
    return path


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}.")
    return number


def data_limits(environ: Mapping[str, str] | None = None) -> DataLimits:
    """MLOPS_MAX_DATA_ROWS and MLOPS_MAX_DATA_MB, else the defaults."""
    env = os.environ if environ is None else environ
    defaults = DataLimits()
    return DataLimits(
        max_rows=_positive_int(env, "MLOPS_MAX_DATA_ROWS", defaults.max_rows),
        max_megabytes=_positive_int(env, "MLOPS_MAX_DATA_MB", defaults.max_megabytes),
    )


def query_timeout_seconds(environ: Mapping[str, str] | None = None) -> int:
    """MLOPS_QUERY_TIMEOUT_SECONDS: how long one query of current data may run (default 30)."""
    env = os.environ if environ is None else environ
    return _positive_int(env, "MLOPS_QUERY_TIMEOUT_SECONDS", DEFAULT_QUERY_TIMEOUT_SECONDS)


def _bounded_int(env: Mapping[str, str], name: str, default: int, most: int, unit: str) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ConfigError(
            f"{name} must be a whole number of {unit} from 1 to {most}, not {value!r}."
        )
    return int(value)


def _path_setting(env: Mapping[str, str], name: str, default: Path) -> Path:
    return Path(env.get(name) or default).expanduser().resolve()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; every default lives under MLOPS_DATA_DIR so zero configuration works."""
    env = os.environ if environ is None else environ
    # Read where data is loaded (stores.sources); checked here so a bad value stops start-up.
    data_limits(env)
    query_timeout_seconds(env)
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
        db_migrate_url=_migrate_url(env, db_url),
        audit_key=_audit_key(env, db_url),
        audit_key_file=_existing_file(env, "MLOPS_AUDIT_KEY_FILE", data_dir / "audit.key"),
        audit_anchor_file=_path_setting(
            env, "MLOPS_AUDIT_ANCHOR_FILE", data_dir / "audit-anchors.jsonl"
        ),
        token_max_days=_bounded_int(
            env, "MLOPS_TOKEN_MAX_DAYS", DEFAULT_TOKEN_MAX_DAYS, 3650, "days"
        ),
        session_hours=_bounded_int(
            env, "MLOPS_SESSION_HOURS", DEFAULT_SESSION_HOURS, MAX_SESSION_HOURS, "hours"
        ),
    )


def ensure_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)

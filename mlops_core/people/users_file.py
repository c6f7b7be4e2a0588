"""The users file (TOML): accounts imported once into an empty panel database.

Accounts live in the panel database, so replicas and concurrent changes agree; the file
remains a way to provision a fresh install. It holds one table per account:

    [users."alice"]
    password_hash = "scrypt$16384$8$1$<salt>$<hash>"
    roles = ["requester"]
    email = "alice@example.com"
    display_name = "Alice"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_core.errors import ConfigError
from mlops_core.identity import ROLES
from mlops_core.people.passwords import parse_hash

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class FileUser:
    username: str
    password_hash: str
    roles: frozenset[str]
    email: str | None = None
    display_name: str | None = None


def _optional_string(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string.")
    return value or None


def _parse_user(name: str, entry: Any, path: Path) -> FileUser:
    where = f"users file {path}: users.{name}"
    if not USERNAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: a username is 1-64 lower-case letters, digits or . _ @ - characters."
        )
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table.")
    password_hash = entry.get("password_hash")
    try:
        parse_hash(password_hash if isinstance(password_hash, str) else "")
    except ValueError:
        raise ConfigError(
            f"{where}.password_hash is not a scrypt hash (scrypt$n$r$p$salt$hash); set the "
            "password with `python -m mlops_core users add`."
        ) from None
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(role in ROLES for role in roles):
        raise ConfigError(f"{where}.roles must be a list of roles from {', '.join(ROLES)}.")
    return FileUser(
        username=name,
        password_hash=password_hash,
        roles=frozenset(roles),
        email=_optional_string(entry, "email", where),
        display_name=_optional_string(entry, "display_name", where),
    )


def load_users_file(path: Path) -> dict[str, FileUser]:
    """Read the users file; a missing file means nothing to import."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"users file {path} is not valid TOML: {exc}.") from None
    table = data.get("users", {})
    if not isinstance(table, dict):
        raise ConfigError(f"users file {path}: users must be a table ([users.<name>]).")
    return {name: _parse_user(name, entry, path) for name, entry in table.items()}

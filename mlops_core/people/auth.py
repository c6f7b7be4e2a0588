"""Local accounts: salted scrypt password hashes in a users file, and sign-in rate limiting.

The users file (TOML, under the data folder by default) holds one table per account:

    [users."alice"]
    password_hash = "scrypt$16384$8$1$<salt>$<hash>"
    roles = ["requester"]
    email = "alice@example.com"
    display_name = "Alice"

Failed sign-ins are counted per username in the panel database, so a lock holds across
processes and replicas.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.errors import ConfigError, InvalidInput, PermissionDenied
from mlops_core.identity import ROLES, Actor
from mlops_core.people.access import load_access, roles_for
from mlops_core.stores.db import SignInFailure, session_factory, utcnow

# scrypt cost: about 16 MiB and some tens of milliseconds per check, which makes guessing
# slow while a sign-in stays instant. The parameters are stored with each hash, so raising
# them later leaves existing hashes valid.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
WRONG_CREDENTIALS = "Wrong username or password."
# For the demo only: one account per role, named after it. The README repeats these.
DEMO_PASSWORDS: Mapping[str, str] = {role: f"{role}-demo" for role in ROLES}


@dataclass(frozen=True)
class LocalUser:
    username: str
    password_hash: str
    roles: frozenset[str]
    email: str | None = None
    display_name: str | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length)


def hash_password(password: str) -> str:
    """A self-describing salted hash: scrypt$n$r$p$salt_b64$hash_b64."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown hash scheme {scheme!r}")
    return (
        int(n),
        int(r),
        int(p),
        base64.b64decode(salt, validate=True),
        base64.b64decode(digest, validate=True),
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether the password matches the stored hash; a malformed hash matches nothing."""
    try:
        n, r, p, salt, expected = _parse_hash(stored)
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except (ValueError, OverflowError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _decoy_hash() -> str:
    # Unknown usernames are checked against this, so the answer takes as long as for a
    # real account and timing does not reveal which usernames exist.
    return hash_password(secrets.token_urlsafe(16))


# --- users file -------------------------------------------------------------------------


def _optional_string(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string.")
    return value or None


def _parse_user(name: str, entry: Any, path: Path) -> LocalUser:
    where = f"users file {path}: users.{name}"
    if not USERNAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: a username is 1-64 lower-case letters, digits or . _ @ - characters."
        )
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table.")
    password_hash = entry.get("password_hash")
    try:
        _parse_hash(password_hash if isinstance(password_hash, str) else "")
    except ValueError:
        raise ConfigError(
            f"{where}.password_hash is not a scrypt hash (scrypt$n$r$p$salt$hash); set the "
            "password with `python -m mlops_core users add`."
        ) from None
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(role in ROLES for role in roles):
        raise ConfigError(f"{where}.roles must be a list of roles from {', '.join(ROLES)}.")
    return LocalUser(
        username=name,
        password_hash=password_hash,
        roles=frozenset(roles),
        email=_optional_string(entry, "email", where),
        display_name=_optional_string(entry, "display_name", where),
    )


def load_users(path: Path) -> dict[str, LocalUser]:
    """Read the users file; a missing file means no local accounts."""
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


def _toml_char(ch: str) -> str:
    # TOML basic strings escape the quote and backslash; control characters go as \uXXXX.
    if ch in '"\\':
        return f"\\{ch}"
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04x}"
    return ch


def _toml_string(value: str) -> str:
    return '"' + "".join(_toml_char(ch) for ch in value) + '"'


def _render_users(users: Mapping[str, LocalUser]) -> str:
    lines = [
        "# Local accounts of the MLOps control panel. Passwords are stored only as salted",
        "# scrypt hashes; change them with `python -m mlops_core users add NAME --role ROLE`.",
    ]
    for name in sorted(users):
        user = users[name]
        roles = ", ".join(_toml_string(role) for role in sorted(user.roles))
        lines += ["", f"[users.{_toml_string(name)}]"]
        lines.append(f"password_hash = {_toml_string(user.password_hash)}")
        lines.append(f"roles = [{roles}]")
        if user.email:
            lines.append(f"email = {_toml_string(user.email)}")
        if user.display_name:
            lines.append(f"display_name = {_toml_string(user.display_name)}")
    return "\n".join(lines) + "\n"


def _write_users(path: Path, users: Mapping[str, LocalUser]) -> None:
    # Write a temporary file and rename it over the old one, so a reader never sees half a
    # file. mkstemp creates it with mode 0600 (only the owner reads the hashes), and the
    # rename keeps that mode.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_render_users(users))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _normalise_username(username: str) -> str:
    return username.strip().lower()


def add_or_update_user(
    path: Path,
    username: str,
    password: str | None,
    roles: Iterable[str],
    email: str | None = None,
    display_name: str | None = None,
) -> LocalUser:
    """Create an account, or replace an existing one's roles, e-mail and display name.

    `password=None` keeps an existing account's password, so an admin can change roles
    without knowing it; a new account needs one.
    """
    name = _normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"Username {username!r} is not valid: use 1-64 lower-case letters, digits "
            "or . _ @ - characters, starting with a letter or digit."
        )
    roles = frozenset(roles)
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise InvalidInput(f"Unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}.")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        raise InvalidInput(f"E-mail {email!r} is not a valid address.")
    users = load_users(path)
    if password is None:
        if name not in users:
            raise InvalidInput(f"New user {name!r} needs a password.")
        password_hash = users[name].password_hash
    elif len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    else:
        password_hash = hash_password(password)
    user = LocalUser(name, password_hash, roles, email or None, display_name or None)
    _write_users(path, {**users, name: user})
    return user


def create_demo_accounts(path: Path) -> list[str]:
    """Add the demo accounts that are missing (existing ones are untouched); return their names."""
    users = load_users(path)
    created = {
        role: LocalUser(role, hash_password(password), frozenset({role}), None, f"Demo {role}")
        for role, password in DEMO_PASSWORDS.items()
        if role not in users
    }
    if created:
        _write_users(path, {**users, **created})
    return list(created)


# --- rate limiting ----------------------------------------------------------------------


def _lock_end(failures: Sequence[datetime]) -> datetime | None:
    """When the latest lock ends, given the failures in ascending order.

    A lock starts at the failure that makes MAX_FAILURES within FAILURE_WINDOW and lasts
    LOCK_DURATION from then. Attempts while locked are not recorded, so they cannot
    extend the lock.
    """
    end = None
    for first, last in zip(failures, failures[MAX_FAILURES - 1 :], strict=False):
        if last - first < FAILURE_WINDOW:
            end = last + LOCK_DURATION
    return end


def _relevant_since(now: datetime) -> datetime:
    # Older failures can neither start nor prolong a lock that is still running.
    return now - FAILURE_WINDOW - LOCK_DURATION


def _lock_remaining(session: Session, username: str, now: datetime) -> timedelta | None:
    failures = session.scalars(
        select(SignInFailure.failed_at)
        .where(SignInFailure.username == username, SignInFailure.failed_at > _relevant_since(now))
        .order_by(SignInFailure.failed_at)
    ).all()
    end = _lock_end(failures)
    return end - now if end is not None and end > now else None


def _record_failure(session: Session, username: str, now: datetime) -> None:
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.username == username, SignInFailure.failed_at <= _relevant_since(now)
        )
    )
    session.add(SignInFailure(username=username, failed_at=now))


def _clear_failures(session: Session, username: str) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.username == username))


def _locked_message(username: str, remaining: timedelta) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-ins for {username}; try again in {minutes} {unit}."


# --- sign-in ----------------------------------------------------------------------------


def _actor(settings: Settings, user: LocalUser, auth_method: str) -> Actor:
    access = load_access(settings.access_file)
    return Actor(
        username=user.username,
        roles=roles_for(user.username, user.email, (), user.roles, access),
        email=user.email,
        display_name=user.display_name,
        auth_method=auth_method,
    )


def authenticate(
    settings: Settings, username: str, password: str, now: datetime | None = None
) -> Actor:
    """Check a local sign-in and return the actor, or raise PermissionDenied.

    Unknown user and wrong password get the same message. `now` is naive UTC, as
    `db.utcnow()` returns; tests pass it to move the clock.
    """
    now = now or utcnow()
    # Unknown names are counted too, so locking does not reveal which accounts exist.
    name = _normalise_username(username)[:255]
    factory = session_factory(settings.db_url)
    with factory.begin() as session:
        remaining = _lock_remaining(session, name, now)
    if remaining is not None:
        raise PermissionDenied(_locked_message(name, remaining))
    user = load_users(settings.users_file).get(name)
    matches = verify_password(password, user.password_hash if user else _decoy_hash())
    signed_in = user is not None and matches
    with factory.begin() as session:
        if signed_in:
            _clear_failures(session, name)
        else:
            _record_failure(session, name, now)
    if user is None or not signed_in:
        raise PermissionDenied(WRONG_CREDENTIALS)
    return _actor(settings, user, "local")


def resolve_local_actor(settings: Settings, username: str) -> Actor:
    """The signed-in local user with roles re-read from configuration.

    The UI calls this on every run, so a changed role or a removed account takes effect
    without waiting for the person to sign out.
    """
    return _resolve(settings, username, "local")


def resolve_cli_actor(settings: Settings, username: str) -> Actor:
    """The actor for the CLI's `--as USER`: the same accounts and roles as the panel."""
    return _resolve(settings, username, "cli")


def _resolve(settings: Settings, username: str, auth_method: str) -> Actor:
    name = _normalise_username(username)
    user = load_users(settings.users_file).get(name)
    if user is None:
        raise PermissionDenied(f"Unknown user {name!r}: no such account in {settings.users_file}.")
    return _actor(settings, user, auth_method)

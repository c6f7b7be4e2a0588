"""The secret that keys the audit chain, and the signatures made with it.

Event hashes and anchors are HMAC-SHA256 with this key. The key never goes into the panel
database, so someone who can write that database, but cannot read the panel's settings or
data folder, cannot make an event or an anchor that verifies.

The key is MLOPS_AUDIT_KEY, else the contents of MLOPS_AUDIT_KEY_FILE. With neither set
(the embedded default) the panel makes `<data folder>/audit.key` on first use, mode 0600,
and reads it from then on. Production on PostgreSQL must set one (see config.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from mlops_core.config import MIN_AUDIT_KEY_CHARS, Settings
from mlops_core.errors import ConfigError


def audit_key(settings: Settings) -> bytes:
    if settings.audit_key is not None:
        return settings.audit_key.encode("utf-8")
    path = settings.audit_key_file
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    """A random key, written whole before it appears under its name: when two processes
    start at once, one link wins and both read the winner's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


def _read_key_file(path: Path) -> bytes:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"MLOPS_AUDIT_KEY_FILE: cannot read the audit key in {path} ({exc})."
        ) from None
    if len(key) < MIN_AUDIT_KEY_CHARS:
        raise ConfigError(
            f"MLOPS_AUDIT_KEY_FILE: {path} must hold a key of at least "
            f"{MIN_AUDIT_KEY_CHARS} characters."
        )
    return key.encode("utf-8")


def canonical(payload: dict[str, Any]) -> bytes:
    """The one byte form of a payload that hashes and signatures are computed over."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign(key: bytes, payload: dict[str, Any]) -> str:
    return hmac.new(key, canonical(payload), hashlib.sha256).hexdigest()


def is_signed(key: bytes, payload: dict[str, Any], signature: str) -> bool:
    return hmac.compare_digest(sign(key, payload), signature)

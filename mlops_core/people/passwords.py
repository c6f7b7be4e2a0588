"""Salted scrypt password hashes, self-describing so their cost can be raised later."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

# scrypt cost: about 16 MiB and some tens of milliseconds per check, which makes guessing
# slow while a sign-in stays instant. The parameters are stored with each hash, so raising
# them later leaves existing hashes valid.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length)


def hash_password(password: str) -> str:
    """A self-describing salted hash: scrypt$n$r$p$salt_b64$hash_b64."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """The parameters, salt and digest of a stored hash; ValueError when it is not one."""
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
        n, r, p, salt, expected = parse_hash(stored)
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except (ValueError, OverflowError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def decoy_hash() -> str:
    """A hash no password matches; unknown usernames are checked against it, so the answer
    takes as long as for a real account and timing does not reveal which usernames exist."""
    return hash_password(secrets.token_urlsafe(16))

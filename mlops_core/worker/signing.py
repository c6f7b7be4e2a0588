"""HMAC-SHA256 signatures: of the panel's own webhooks, and checking MLflow's.

The panel signs `<timestamp>.<body>` and sends `X-Mlops-Signature: t=<timestamp>,v1=<hex>`;
a receiver recomputes it with the shared secret and refuses old timestamps (`verify`).

MLflow 3 signs `<delivery id>.<timestamp>.<body>` and sends it base64-encoded as
`X-MLflow-Signature: v1,<base64>`, with `X-MLflow-Timestamp` and `X-MLflow-Delivery-Id`
(mlflow.webhooks.delivery). `verify_mlflow` checks exactly that, in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Mlops-Signature"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MLFLOW_SIGNATURE_HEADER = "X-MLflow-Signature"
MLFLOW_TIMESTAMP_HEADER = "X-MLflow-Timestamp"
MLFLOW_DELIVERY_HEADER = "X-MLflow-Delivery-Id"
# Deliveries signed longer ago than this (or this far in the future) are refused.
TOLERANCE_SECONDS = 300


def _mac(secret: str, content: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Mlops-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    digest = _mac(secret, f"{timestamp}.".encode() + body).hex()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """Whether `header` signs `body` with `secret`, at most TOLERANCE_SECONDS from `now`."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = parts.get("t", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = _mac(secret, f"{timestamp}.".encode() + body).hex()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class MlflowCheck:
    """The outcome of checking an MLflow delivery; `problem` is None when it verifies."""

    delivery_id: str
    problem: str | None


def verify_mlflow(secret: str, headers: dict[str, str], body: bytes, now: float) -> MlflowCheck:
    """Check an MLflow webhook delivery's signature and timestamp (not yet its replay)."""
    delivery_id = headers.get(MLFLOW_DELIVERY_HEADER.lower(), "")
    timestamp = headers.get(MLFLOW_TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(MLFLOW_SIGNATURE_HEADER.lower(), "")
    if not (delivery_id and timestamp and signature):
        return MlflowCheck(
            delivery_id, "unsigned: the signature, timestamp or delivery id is missing"
        )
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return MlflowCheck(delivery_id, "the timestamp is missing, malformed or too old")
    version, _, encoded = signature.partition(",")
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return MlflowCheck(delivery_id, "the signature is not base64")
    content = f"{delivery_id}.{timestamp}.".encode() + body
    if version != "v1" or not hmac.compare_digest(_mac(secret, content), given):
        return MlflowCheck(delivery_id, "the signature does not match")
    return MlflowCheck(delivery_id, None)

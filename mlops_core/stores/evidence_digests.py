"""Digests of the evidence the panel stores in MLflow, kept in the audit chain.

MLflow does not protect a run's artifacts: whoever may write to the tracking store can
copy one version's `fairness/report.json` onto another version's run. So whenever the
panel stores evidence it appends an `evidence_recorded` audit event naming the model,
version, run and the sha256 of the exact bytes of each artifact it uploaded; whoever reads
the evidence back checks the bytes against the latest digest recorded for that run and
path. Bytes that contradict the record were replaced; bytes without a record were not
produced by the panel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from mlops_core.config import Settings
from mlops_core.identity import Actor
from mlops_core.stores import audit
from mlops_core.stores.db import AuditEvent, session_factory

EVIDENCE_RECORDED = "evidence_recorded"
Integrity = Literal["verified", "mismatch", "unrecorded"]
VERIFIED: Integrity = "verified"
MISMATCH: Integrity = "mismatch"
UNRECORDED: Integrity = "unrecorded"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_evidence(
    settings: Settings,
    actor: Actor,
    model: str,
    version: str,
    run_id: str,
    files: Mapping[str, bytes],
) -> None:
    """Record the digests of `files` (artifact path -> the bytes uploaded) just stored on
    the run, as the panel's own evidence."""
    audit.record(
        settings,
        actor,
        EVIDENCE_RECORDED,
        model=model,
        version=version,
        details={
            "run_id": run_id,
            "artifacts": {path: sha256_hex(data) for path, data in files.items()},
        },
    )


@dataclass(frozen=True)
class DigestCheck:
    """The bytes read from `path` of a run, against the latest digest recorded for them."""

    run_id: str
    path: str
    integrity: Integrity
    actual: str
    recorded: str | None = None
    event_id: int | None = None

    @property
    def verified(self) -> bool:
        return self.integrity == VERIFIED

    @property
    def summary(self) -> str:
        where = f"{self.path} of run {self.run_id}"
        if self.integrity == VERIFIED:
            return f"{where} (sha256 matches audit event #{self.event_id})"
        if self.integrity == MISMATCH:
            return (
                f"{where} is not the evidence the panel stored: its sha256 is "
                f"{self.actual[:12]}…, the panel recorded {(self.recorded or '')[:12]}… "
                f"(audit event #{self.event_id})"
            )
        return f"{where} was not produced by the panel (no digest of it is recorded)"


def _latest_digest(db_url: str, model: str, run_id: str, path: str) -> tuple[int, str] | None:
    query = (
        select(AuditEvent.id, AuditEvent.details)
        .where(AuditEvent.action == EVIDENCE_RECORDED, AuditEvent.model_name == model)
        .order_by(AuditEvent.id.desc())
    )
    with session_factory(db_url)() as session:
        for event_id, details in session.execute(query):
            artifacts = (details or {}).get("artifacts") or {}
            if details.get("run_id") == run_id and path in artifacts:
                return event_id, artifacts[path]
    return None


def check_evidence(db_url: str, model: str, run_id: str, path: str, data: bytes) -> DigestCheck:
    """Whether `data`, read from `path` of the model's run, is the evidence the panel stored."""
    actual = sha256_hex(data)
    found = _latest_digest(db_url, model, run_id, path)
    if found is None:
        return DigestCheck(run_id, path, UNRECORDED, actual)
    event_id, recorded = found
    integrity = VERIFIED if recorded == actual else MISMATCH
    return DigestCheck(run_id, path, integrity, actual, recorded, event_id)

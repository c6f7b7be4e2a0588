"""The policy in force, and the audit trail of its changes.

Every workflow action reads the policy through `policy_in_force`. When the file's digest
differs from the last one the audit log recorded, a `policy_changed` event records the old
and new sha256, the file, a unified diff and the new text: the audit log then says which
policy every decision was taken under, and when it changed, even when the file was edited
by hand between two reads.
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_core.config import Settings
from mlops_core.policy import Policy, load_policy
from mlops_core.stores import audit
from mlops_core.stores.db import AuditEvent

POLICY_CHANGED = "policy_changed"
# A policy is a few kilobytes; this bounds what one audit event carries.
MAX_TEXT_CHARS = 200_000
# The digest this process last saw recorded, per panel database: skips a query per read.
_RECORDED: dict[str, str | None] = {}


def _last_recorded(session: Session) -> dict[str, Any] | None:
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == POLICY_CHANGED)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return dict(event.details or {}) if event else None


def policy_diff(old_text: str, new_text: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"{path} (before)",
            tofile=f"{path} (now)",
        )
    )


def record_policy_read(settings: Settings, policy: Policy) -> bool:
    """Record a `policy_changed` event when `policy` is not the last one recorded; True if so.

    The first read records the policy as changed from nothing; a policy file that went
    away is a change to no file (sha256 null).
    """
    if settings.db_url in _RECORDED and _RECORDED[settings.db_url] == policy.sha256:
        return False

    def work(session: Session) -> bool:
        last = _last_recorded(session)
        if last is None and policy.sha256 is None:
            return False
        if last is not None and last.get("new_sha256") == policy.sha256:
            return False
        old_text = (last or {}).get("text") or ""
        new_text = (policy.text or "")[:MAX_TEXT_CHARS]
        audit.append(
            session,
            audit.SYSTEM,
            POLICY_CHANGED,
            reason="The policy file changed since the panel last read it."
            if last
            else "The panel read its policy for the first time.",
            details={
                "path": policy.source,
                "old_sha256": (last or {}).get("new_sha256"),
                "new_sha256": policy.sha256,
                "diff": policy_diff(old_text, new_text, policy.source),
                "text": new_text,
            },
        )
        return True

    changed = audit.atomic(settings, work)
    _RECORDED[settings.db_url] = policy.sha256
    return changed


def policy_in_force(settings: Settings) -> Policy:
    """The policy as it is on disk now (re-read when the file changed), change recorded."""
    policy = load_policy(settings.policy_file)
    record_policy_read(settings, policy)
    return policy

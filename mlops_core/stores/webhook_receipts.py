"""MLflow webhook deliveries already received: a delivery id is accepted once.

A signed delivery replayed inside the timestamp tolerance would verify again; its
delivery id (covered by the signature) is what tells it apart. Receipts older than the
tolerance are dropped, since the timestamp check refuses those deliveries anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from mlops_core.stores.db import session_factory
from mlops_core.stores.worker_tables import WebhookReceipt


def first_receipt(
    db_url: str, delivery_id: str, event: str, now: datetime, keep: timedelta
) -> bool:
    """Record the delivery; False when it was received before (a replay)."""
    sessions = session_factory(db_url)
    with sessions.begin() as session:
        session.execute(delete(WebhookReceipt).where(WebhookReceipt.received_at < now - keep))
    try:
        with sessions.begin() as session:
            session.add(WebhookReceipt(delivery_id=delivery_id, event=event, received_at=now))
    except IntegrityError:
        return False
    return True

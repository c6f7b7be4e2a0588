"""The worker's tables: job runs (one per job, slot and attempt: the lease that lets
several workers run each scheduled job once), the notification outbox written with the
audit event it announces, deliveries per channel with every attempt, and the MLflow
webhook deliveries already received (replays are refused).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from mlops_core.stores.migrations.grants import grant_to_panel_role

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("slot", sa.DateTime, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        # Two workers claiming the same slot: the database lets exactly one insert win.
        sa.UniqueConstraint("job", "slot", "attempt", name="uq_job_run_slot_attempt"),
    )
    op.create_index("ix_job_run_job_started", "job_run", ["job", "started_at"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("audit_event_id", sa.Integer, nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("fanned_out_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, sa.ForeignKey("notification_outbox.id"), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("claimed_until", sa.DateTime, nullable=True),
        sa.Column("delivered_at", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("outbox_id", "channel", name="uq_delivery_per_channel"),
    )
    op.create_index(
        "ix_notification_delivery_due", "notification_delivery", ["status", "next_attempt_at"]
    )
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id", sa.Integer, sa.ForeignKey("notification_delivery.id"), nullable=False
        ),
        sa.Column("attempted_at", sa.DateTime, nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_delivery_attempt_delivery", "delivery_attempt", ["delivery_id"])
    op.create_table(
        "webhook_receipt",
        sa.Column("delivery_id", sa.String(100), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    grant_to_panel_role(TABLE_RIGHTS, SEQUENCES)


# What the panel's own role needs (see 0002): the worker connects as that role.
TABLE_RIGHTS = {
    "job_run": "SELECT, INSERT, UPDATE",  # a run is claimed, then finished
    "notification_outbox": "SELECT, INSERT, UPDATE",  # fanned out once
    "notification_delivery": "SELECT, INSERT, UPDATE",  # claimed, retried, resent
    "delivery_attempt": "SELECT, INSERT",  # a record of each attempt, never changed
    "webhook_receipt": "SELECT, INSERT, DELETE",  # receipts older than the replay window go
}
SEQUENCES = ("job_run", "notification_outbox", "notification_delivery", "delivery_attempt")

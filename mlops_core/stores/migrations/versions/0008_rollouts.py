"""Staged rollouts: the rollout and rollout_evaluation tables, and `rolling_out` requests.

A request whose rollout runs is still open, so the one-open-request-per-alias index now
counts it; one active (running, paused, promoting) rollout per model.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from mlops_core.stores.migrations.grants import grant_to_panel_role

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "uq_open_request_per_alias"
OPEN_REQUEST = sa.text("status IN ('pending', 'approved', 'applying', 'rolling_out')")
# Evaluations are evidence: the panel adds them and never changes one.
TABLE_RIGHTS = {"rollout": "SELECT, INSERT, UPDATE", "rollout_evaluation": "SELECT, INSERT"}
ACTIVE_ROLLOUT = sa.text("status IN ('running', 'paused', 'promoting')")


def upgrade() -> None:
    op.drop_index(INDEX, table_name="promotion_request")
    op.create_index(
        INDEX,
        "promotion_request",
        ["model_name", "alias"],
        unique=True,
        sqlite_where=OPEN_REQUEST,
        postgresql_where=OPEN_REQUEST,
    )
    op.create_table(
        "rollout",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("promotion_request.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("champion_version", sa.String(64), nullable=True),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=True),
        sa.Column("key_metric", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("stage_index", sa.Integer, nullable=False),
        sa.Column("stage_started_at", sa.DateTime, nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
    )
    op.create_index(
        "uq_active_rollout_per_model",
        "rollout",
        ["model_name"],
        unique=True,
        sqlite_where=ACTIVE_ROLLOUT,
        postgresql_where=ACTIVE_ROLLOUT,
    )
    op.create_table(
        "rollout_evaluation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollout.id"), nullable=False),
        sa.Column("stage_index", sa.Integer, nullable=False),
        sa.Column("stage_name", sa.String(64), nullable=False),
        sa.Column("traffic", sa.Float, nullable=False),
        sa.Column("evaluated_at", sa.DateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_rollout_evaluation_rollout_id", "rollout_evaluation", ["rollout_id"])
    grant_to_panel_role(TABLE_RIGHTS, TABLE_RIGHTS)

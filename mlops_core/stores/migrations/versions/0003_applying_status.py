"""The `applying` status: an apply claims its request before it touches MLflow.

An applying request is still open, so the one-open-request-per-alias index now counts it,
and `apply_started_at` tells an apply in flight from one that stopped.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "uq_open_request_per_alias"
OPEN_REQUEST = sa.text("status IN ('pending', 'approved', 'applying')")


def upgrade() -> None:
    op.add_column("promotion_request", sa.Column("apply_started_at", sa.DateTime, nullable=True))
    op.drop_index(INDEX, table_name="promotion_request")
    op.create_index(
        INDEX,
        "promotion_request",
        ["model_name", "alias"],
        unique=True,
        sqlite_where=OPEN_REQUEST,
        postgresql_where=OPEN_REQUEST,
    )

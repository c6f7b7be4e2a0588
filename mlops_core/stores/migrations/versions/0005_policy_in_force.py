"""The policy in force is evidence: its sha256 and file are frozen into requests and decisions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("promotion_request", "decision"):
        op.add_column(table, sa.Column("policy_sha256", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("policy_source", sa.Text, nullable=True))

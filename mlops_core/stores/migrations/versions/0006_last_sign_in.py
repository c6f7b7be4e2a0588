"""When each account last signed in with its password, for the admins' account list.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("account", sa.Column("last_sign_in_at", sa.DateTime, nullable=True))

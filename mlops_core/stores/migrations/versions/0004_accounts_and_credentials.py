"""Accounts and credentials in the panel database: local accounts (until now in users.toml),
personal access tokens for the CLI and panel sign-in sessions (both hashed), and sign-in
back-off per username and client address (replacing the per-username failure log).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from mlops_core.stores.migrations.grants import grant_to_panel_role

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("is_service", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "access_token",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("revoked_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_access_token_username", "access_token", ["username"])
    op.create_table(
        "sign_in_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_sign_in_session_username", "sign_in_session", ["username"])
    op.create_table(
        "sign_in_throttle",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime, nullable=False),
        sa.Column("blocked_until", sa.DateTime, nullable=False),
        sa.UniqueConstraint("username", "client", name="uq_sign_in_throttle_key"),
    )
    # The old log counted failures per username only, which let anyone lock an account.
    op.drop_table("sign_in_failure")
    grant_to_panel_role(TABLE_RIGHTS, SEQUENCES)


# What the panel's own role needs on the new tables (see 0002: the panel may connect as a
# role that owns nothing, while migrations run as the owner).
TABLE_RIGHTS = {
    "account": "SELECT, INSERT, UPDATE, DELETE",  # admins add, change and remove accounts
    "access_token": "SELECT, INSERT, UPDATE",  # revoked and last used are updates
    "sign_in_session": "SELECT, INSERT, DELETE",  # sign-out ends sessions
    "sign_in_throttle": "SELECT, INSERT, UPDATE, DELETE",  # failures counted, then cleared
}
SEQUENCES = ("access_token", "sign_in_throttle")

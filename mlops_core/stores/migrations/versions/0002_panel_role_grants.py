"""Rights for the panel's own PostgreSQL role: what the panel does, nothing more.

When migrations run as the schema's owner (MLOPS_DB_MIGRATE_URL) and the panel connects
as another role (the user in MLOPS_DB_URL), that role may read and append audit events
but never update, delete or truncate them; owning no table, it may not disable or drop
the append-only triggers either. With one role for both, or on SQLite, nothing changes.

A role split after this migration ran gets the same grants by hand (docs/security-audit.md).
A later migration that adds a table grants the panel's role its rights the same way.

Revision ID: 0002
Revises: 0001
"""

from mlops_core.stores.migrations.grants import grant_to_panel_role

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# What the panel's own queries need, table by table.
TABLE_RIGHTS = {
    "audit_event": "SELECT, INSERT",  # append-only
    "promotion_request": "SELECT, INSERT, UPDATE",  # status changes; claim() locks by UPDATE
    "decision": "SELECT, INSERT",
    "sign_in_failure": "SELECT, INSERT, DELETE",  # the lockout prunes and clears failures
    "alembic_version": "SELECT",  # the panel checks at start that the schema is current
}
# Their serial ids: INSERT draws the next value.
SEQUENCES = ("audit_event", "promotion_request", "decision", "sign_in_failure")


def upgrade() -> None:
    grant_to_panel_role(TABLE_RIGHTS, SEQUENCES)

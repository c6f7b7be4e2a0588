"""Rights of the panel's own PostgreSQL role, granted by the migration that adds a table.

When migrations run as the schema's owner (MLOPS_DB_MIGRATE_URL) and the panel connects
as another role (the user in MLOPS_DB_URL), that role gets exactly the rights its queries
need. With one role for both, or on SQLite, nothing is granted.
"""

from collections.abc import Iterable, Mapping

from alembic import context, op


def grant_to_panel_role(table_rights: Mapping[str, str], sequences: Iterable[str]) -> None:
    """GRANT each table its rights and each serial id's sequence its USAGE to the panel."""
    bind = op.get_bind()
    role = context.config.attributes.get("app_role")
    if bind.dialect.name != "postgresql" or not role:
        return
    quoted = bind.dialect.identifier_preparer.quote(role)
    for table, rights in table_rights.items():
        op.execute(f"GRANT {rights} ON TABLE {table} TO {quoted}")
    for table in sequences:
        op.execute(f"GRANT USAGE ON SEQUENCE {table}_id_seq TO {quoted}")

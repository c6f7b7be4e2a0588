"""Alembic environment: run against the connection `mlops_core.stores.db.upgrade` hands in."""

from alembic import context

from mlops_core.stores.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

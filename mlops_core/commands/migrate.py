"""`migrate`: bring the panel database to the newest schema, as its owner.

With MLOPS_DB_MIGRATE_URL set this runs as the owner and grants the panel's own role (the
user in MLOPS_DB_URL) its rights, so the panel itself never needs the owner's password.
"""

from __future__ import annotations

import argparse

from mlops_core.commands.catalog import help_of
from mlops_core.config import Settings
from mlops_core.stores.db import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help=help_of("migrate"))
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    role = settings.db_app_role
    roles = f" (migrated by its owner; the panel connects as {role})" if role else ""
    print(f"The panel database is at the newest schema{roles}.")
    return 0

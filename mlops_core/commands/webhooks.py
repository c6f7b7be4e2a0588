"""`webhooks register`: point an MLflow tracking server's registry webhooks at the worker.

The secret comes from MLOPS_MLFLOW_WEBHOOK_SECRET, the same variable the worker verifies
with, so it never appears on a command line. An admin's access token is required.
"""

from __future__ import annotations

import argparse
import os

from mlops_core.commands.catalog import help_of
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry
from mlops_core.worker.mlflow_webhook import DEFAULT_NAME, register_webhook
from mlops_core.worker.server import SECRET_ENV, WEBHOOK_PATH


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("webhooks", help=help_of("webhooks"))
    actions = parser.add_subparsers(dest="webhooks_action", required=True, metavar="ACTION")
    create = actions.add_parser("register", help="create or update the worker's MLflow webhook")
    create.add_argument(
        "--url",
        required=True,
        help=f"the worker's webhook URL as MLflow reaches it, e.g. http://worker:8502{WEBHOOK_PATH}",
    )
    create.add_argument(
        "--name", default=DEFAULT_NAME, help=f"webhook name (default {DEFAULT_NAME})"
    )
    add_token_arguments(create)
    create.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    actor = token_actor(args, settings, "`webhooks register`")
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise InvalidInput(f"Set {SECRET_ENV} to the secret the worker verifies deliveries with.")
    webhook_id = register_webhook(
        settings, Registry(settings.tracking_uri), actor, args.url, secret, args.name
    )
    print(f"MLflow webhook {args.name} ({webhook_id}) sends registry events to {args.url}.")
    return 0

"""One module per CLI command group; each exposes `register(subparsers)`."""

from mlops_core.commands import demo, models, users

COMMAND_MODULES = [demo, models, users]

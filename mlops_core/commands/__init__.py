"""One module per CLI command group; each exposes `register(subparsers)`."""

from mlops_core.commands import audit, compare, demo, fairness, gate, models, users, workflow

COMMAND_MODULES = [demo, models, users, compare, fairness, gate, workflow, audit]

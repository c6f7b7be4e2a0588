"""One module per CLI command group; each exposes `register(subparsers)`."""

from mlops_core.commands import (
    audit,
    compare,
    demo,
    drift,
    fairness,
    gate,
    models,
    users,
    workflow,
)

COMMAND_MODULES = [demo, models, users, compare, fairness, drift, gate, workflow, audit]

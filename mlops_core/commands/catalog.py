"""Every CLI command: the module that implements it and its one line of help.

`python -m mlops_core --help` lists these without importing a single command module, and
running a command imports only the module that owns it, with the libraries it needs
(MLflow, pandas, scikit-learn): the CLI starts in a fraction of a second.
"""

from __future__ import annotations

# name -> (module under mlops_core.commands, help), in the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "seed the demo scenario (idempotent)"),
    "models": ("models", "list registered models and their champions"),
    "users": ("users", "list or manage local accounts"),
    "tokens": ("tokens", "make, list or revoke access tokens"),
    "compare": ("compare", "compare runs or model versions: params, metrics, best values"),
    "fairness": (
        "fairness",
        "fairness disparities of a model version or of a labelled data file",
    ),
    "drift": (
        "drift",
        "data drift of a model's current data, or between two CSV/Parquet files",
    ),
    "quality": (
        "quality",
        "quality of a model's served versions on its inference log, champion vs challenger",
    ),
    "check": (
        "check",
        "behaviour checks of a model version in a sandbox: latency, determinism, missing values",
    ),
    "gate": ("gate", "evaluate the promotion gates of a version"),
    "policy": ("policy", "draft or check the promotion policy"),
    "request": ("workflow", "request the promotion of a version"),
    "approve": ("workflow", "approve a promotion request"),
    "reject": ("workflow", "reject a promotion request"),
    "cancel": ("workflow", "withdraw your own open request"),
    "apply-retry": ("workflow", "retry moving the alias or stage of an approved request"),
    "rollback": ("workflow", "move the alias or stage back to the previous champion"),
    "reconcile": ("workflow", "compare MLflow's aliases and stages with the panel"),
    "accept-alias": ("workflow", "admins: accept an alias moved outside the panel"),
    "requests": ("workflow", "list promotion requests"),
    "rollout": ("rollout", "start, watch, tick, pause, resume or abort a staged rollout"),
    "audit": ("audit", "verify or export the audit log"),
    "migrate": ("migrate", "upgrade the panel database's schema"),
    "worker": ("worker", "run scheduled checks, notifications and MLflow webhooks"),
    "webhooks": ("webhooks", "register the worker as an MLflow registry webhook"),
}


def help_of(command: str) -> str:
    return COMMANDS[command][1]

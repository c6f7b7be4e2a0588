"""Registering the worker as an MLflow 3 webhook (MlflowClient.create_webhook).

MLflow then POSTs registry events to the worker, signed with the shared secret. One
webhook per name: registering again updates its URL, events and secret. An admin's
action, recorded in the audit log (without the secret).

The MLflow server must be able to reach the URL: by default it sends only to https URLs
that resolve to public addresses (MLFLOW_WEBHOOK_ALLOWED_SCHEMES and
MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS on the server change that), and it needs
MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY to keep the secret across its restarts.
"""

from __future__ import annotations

from urllib.parse import urlparse

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.identity import Actor
from mlops_core.people.access import require_role
from mlops_core.stores import audit
from mlops_core.stores.registry import Registry
from mlops_core.worker.reactions import EVENTS

DEFAULT_NAME = "mlops-control-panel-worker"
MIN_SECRET_CHARS = 32


def register_webhook(
    settings: Settings, registry: Registry, actor: Actor, url: str, secret: str, name: str
) -> str:
    """Create (or update) the webhook; returns its MLflow id."""
    require_role(actor, "admin", "register the MLflow webhook")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(f"--url must be an http(s) URL of the worker, not {url!r}.")
    if len(secret) < MIN_SECRET_CHARS:
        raise InvalidInput(f"The webhook secret must have at least {MIN_SECRET_CHARS} characters.")
    with registry._calling():
        existing = next(
            (hook for hook in registry.client.list_webhooks(max_results=1000) if hook.name == name),
            None,
        )
        if existing is None:
            hook = registry.client.create_webhook(
                name=name,
                url=url,
                events=list(EVENTS),
                secret=secret,
                description="Registry events for the MLOps control panel's worker",
            )
        else:
            hook = registry.client.update_webhook(
                existing.webhook_id, url=url, events=list(EVENTS), secret=secret, status="ACTIVE"
            )
    audit.record(
        settings,
        actor,
        "webhook_registered",
        reason=f"MLflow webhook {name} -> {url}",
        details={"webhook_id": hook.webhook_id, "name": name, "url": url, "events": list(EVENTS)},
    )
    return hook.webhook_id

"""What the worker does about registry events, from a webhook or from polling.

- A new version (`model_version.created`): its gates are evaluated and kept as evidence
  (`governance.version_gates`) so reviewers see them before anyone requests.
- A tag set on a version (`model_version_tag.set`): the same again, since evidence tags
  change what the gates read; the panel's own `mlops.` tags are left alone.
- An alias set or deleted (`model_version_alias.*`): reconcile at once, which raises the
  "moved outside the panel" alert (once) instead of at the next scheduled reconcile.

Only models the policy covers are evaluated: a model without a policy has no gates.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_core.config import Settings
from mlops_core.governance.promotion.reconcile import reconcile
from mlops_core.governance.version_gates import record_version_gates
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.stores.registry import Registry

# The panel's own tags (mlops.promotion.*, mlops.fairness.*) are evidence it wrote itself.
PANEL_TAG_PREFIX = "mlops."
# Polling evaluates at most the newest versions of each model: older ones have been
# registered long before the worker started, and evaluating a whole history is not news.
POLLED_VERSIONS = 3
# The worker acts for the panel; writing evidence needs a role above viewer.
WORKER = Actor(username="worker", roles=frozenset({"requester"}), auth_method="worker")

VERSION_CREATED = "model_version.created"
TAG_SET = "model_version_tag.set"
ALIAS_CREATED = "model_version_alias.created"
ALIAS_DELETED = "model_version_alias.deleted"
EVENTS = (VERSION_CREATED, TAG_SET, ALIAS_CREATED, ALIAS_DELETED)


@dataclass(frozen=True)
class RegistryEvent:
    """One registry event: MLflow's `<entity>.<action>` and its data."""

    event: str
    model: str
    version: str | None = None
    alias: str | None = None
    tag: str | None = None


def react(settings: Settings, registry: Registry, event: RegistryEvent) -> str:
    """Do what the event calls for; a line saying what was done."""
    if event.event in (ALIAS_CREATED, ALIAS_DELETED):
        warnings = reconcile(settings, registry)
        return f"reconciled: {len(warnings)} warning(s)"
    if not load_policy(settings.policy_file).covers(event.model) or event.version is None:
        return f"{event.model} is not covered by the policy: no gates"
    if event.event == TAG_SET and (event.tag or "").startswith(PANEL_TAG_PREFIX):
        return "a tag the panel set: nothing to do"
    stored = record_version_gates(
        settings,
        registry,
        WORKER,
        event.model,
        event.version,
        trigger=event.event,
        again=event.event == TAG_SET,
    )
    if stored is None:
        return f"gates of {event.model} v{event.version} were kept before"
    return f"gates of {event.model} v{event.version}: {stored.summary}"


def poll_registry(settings: Settings, registry: Registry) -> str:
    """Where webhooks are unavailable: new versions get their gates, aliases reconciled."""
    policy = load_policy(settings.policy_file)
    evaluated = 0
    for model in registry.model_names():
        if not policy.covers(model):
            continue
        for version in registry.list_versions(model)[:POLLED_VERSIONS]:
            stored = record_version_gates(
                settings, registry, WORKER, model, version.version, trigger="poll"
            )
            evaluated += stored is not None
    warnings = reconcile(settings, registry)
    return f"{evaluated} new version(s) evaluated; {len(warnings)} reconcile warning(s)"

"""The demo's staged rollout: credit-default v3 mid-way, at its 10% split stage.

A demo requester asks for v3, a demo approver approves and starts the rollout under the
example policy's plan, which is what people would do on the Approvals and Rollouts pages;
the audit log names them, acting through the demo. The stage starts where the inference
log's v3 traffic starts, so `rollout tick` judges the rows the log already holds.
"""

from __future__ import annotations

from datetime import datetime

from mlops_core.config import Settings
from mlops_core.demo.evidence import _with_installed_policy
from mlops_core.errors import MlopsError
from mlops_core.governance.promotion.decide import approve
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.rollout.start import start_rollout
from mlops_core.rollout.state import list_rollouts
from mlops_core.stores.db import utcnow
from mlops_core.stores.model_data import load_current
from mlops_core.stores.registry import Registry

MODEL, VERSION = "credit-default", "3"
DEMO_REQUESTER = Actor("requester", frozenset({"requester"}), auth_method="demo")
DEMO_APPROVER = Actor("approver", frozenset({"approver"}), auth_method="demo")


def _first_traffic(settings: Settings, version: str) -> datetime | None:
    """When the inference log first shows `version` serving, if it does."""
    policy = load_policy(settings.policy_file)
    try:
        frame = load_current(settings, policy.for_model(MODEL).data).frame
    except MlopsError:
        return None
    if "model_version" not in frame or "timestamp" not in frame:
        return None
    served = frame.loc[frame["model_version"].astype(str) == version, "timestamp"]
    return None if served.empty else served.min().to_pydatetime()


def start_demo_rollout(settings: Settings) -> list[str]:
    """Request, approve and start the rollout of credit-default v3, unless the model has
    had a rollout already or the policy plans none."""
    settings = _with_installed_policy(settings)
    if load_policy(settings.policy_file).rollout_plan(MODEL) is None:
        return []
    if list_rollouts(settings, MODEL):
        return []
    registry = Registry(settings.tracking_uri)
    request = request_promotion(
        settings,
        registry,
        DEMO_REQUESTER,
        MODEL,
        VERSION,
        "v3 beats the champion and is fair; roll it out in stages.",
    )
    approve(settings, registry, DEMO_APPROVER, request.id, "Gates pass; start with 10% of traffic.")
    since = _first_traffic(settings, VERSION) or utcnow()
    rollout = start_rollout(settings, registry, DEMO_APPROVER, request.id, now=since)
    return [f"rollout #{rollout.id} of {MODEL} v{VERSION} at stage {rollout.stage.name}"]

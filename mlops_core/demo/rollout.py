"""The demo's staged rollout: credit-default v3 mid-way, at its 10% split stage.

A demo requester asks for v3, a demo approver approves and starts the rollout under the
example policy's plan, which is what people would do on the Approvals and Rollouts pages;
the audit log names them, acting through the demo. The stage starts where the inference
log's rollout-era traffic starts: `demo.traffic` routes those weeks by the state the
start published, so `rollout tick` judges rows the routing core wrote.
"""

from __future__ import annotations

from datetime import datetime

from mlops_core.config import Settings
from mlops_core.demo.evidence import _with_installed_policy
from mlops_core.governance.promotion.decide import approve
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.rollout.start import start_rollout
from mlops_core.rollout.state import list_rollouts
from mlops_core.stores.registry import Registry

MODEL, VERSION = "credit-default", "3"
DEMO_REQUESTER = Actor("requester", frozenset({"requester"}), auth_method="demo")
DEMO_APPROVER = Actor("approver", frozenset({"approver"}), auth_method="demo")


def start_demo_rollout(settings: Settings, since: datetime) -> list[str]:
    """Request, approve and start the rollout of credit-default v3 at `since`, unless the
    model has had a rollout already or the policy plans none."""
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
    rollout = start_rollout(settings, registry, DEMO_APPROVER, request.id, now=since)
    return [f"rollout #{rollout.id} of {MODEL} v{VERSION} at stage {rollout.stage.name}"]

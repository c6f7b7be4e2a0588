"""Traffic for rollout tests: demo credit applications routed by `examples/router.py`.

A private copy of the demo registry (aliases move), an inference log of its own per test,
and a policy whose `credit-default` plan the test chooses. The router scores with the real
registered models; a test swaps in a failing or a useless challenger through its scorer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from examples.router import Router, Scorer, log_labels, sklearn_scorer
from mlops_core.config import Settings
from mlops_core.demo.data import CREDIT
from mlops_core.governance.promotion.decide import approve
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.rollout.publish import CHALLENGER, TAG_ID, TAG_MODE, TAG_STAGE, TAG_TRAFFIC
from mlops_core.rollout.start import start_rollout
from mlops_core.rollout.state import RolloutView
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.test_promotion import copy_demo_env

MODEL = "credit-default"
TABLE = "credit_traffic"
REQUESTER = Actor("requester", frozenset({"requester"}))
APPROVER = Actor("approver", frozenset({"approver"}))
STAGE_GUARDRAILS = """
[models."credit-default".rollout.guardrails]
max_error_rate = 0.05
max_latency_p99_ms = 2000
max_prediction_drift = 0.3
"""


def stage(name: str, mode: str, traffic: int, requests: int, labelled: int = 0, quality=False):
    text = f"""
[[models."credit-default".rollout.stages]]
name = "{name}"
mode = "{mode}"
traffic = {traffic}
min_requests = {requests}
min_labelled = {labelled}
"""
    if quality:
        text += """[models."credit-default".rollout.stages.guardrails]
max_error_rate = 0.05
quality_vs_champion = true
"""
    return text


CHURN_PLAN = """
[models."churn-predictor"]
target = "champion"
[models."churn-predictor".data]
current_url = "{demo_inference_url}"
current_table = "inference_churn_predictor"
[models."churn-predictor".rollout]
[[models."churn-predictor".rollout.stages]]
name = "shadow"
mode = "shadow"
traffic = 0
"""


SHADOW_THEN_CANARY = stage("shadow", "shadow", 0, requests=60) + stage(
    "canary", "split", 25, requests=60
)


def policy_text(inference_url: str, stages: str, auto_advance: bool = True) -> str:
    return f"""
[models."credit-default"]
target = "champion"
key_metric = "roc_auc"
[models."credit-default".min_metrics]
roc_auc = 0.6
[models."credit-default".data]
current_url = "{inference_url}"
current_table = "{TABLE}"
[models."credit-default".rollout]
auto_advance = {"true" if auto_advance else "false"}
{STAGE_GUARDRAILS}
{stages}
"""


def clean_registry(registry: Registry, model: str = MODEL) -> None:
    """Champion v1, no challenger, no rollout tags (the demo leaves a rollout running)."""
    registry.move_to(model, "champion", "1")
    aliases, tags = registry.aliases_and_tags(model)
    if CHALLENGER in aliases:
        registry.delete_alias(model, CHALLENGER)
    for key in (TAG_ID, TAG_MODE, TAG_STAGE, TAG_TRAFFIC):
        if key in tags:
            registry.delete_model_tag(model, key)


def rollout_settings(
    store: Settings, folder: Path, panel_db_url: str, stages: str, **kw: bool
) -> Settings:
    inference_url = f"sqlite:///{folder / 'inference.db'}"
    policy = folder / "policy.toml"
    policy.write_text(policy_text(inference_url, stages, **kw))
    db.upgrade(panel_db_url)
    return replace(
        store,
        db_url=panel_db_url,
        policy_file=policy,
        inference_db_url=inference_url,
        audit_anchor_file=folder / "audit-anchors.jsonl",
    )


def rollout_env(demo: Settings, folder: Path, stages: str) -> dict[str, str]:
    """A private store as environment variables (for the app): the demo registry copied,
    its own panel database, and a policy planning rollouts of both demo models."""
    inference_url = f"sqlite:///{folder / 'inference.db'}"
    policy = folder / "rollout-policy.toml"
    churn = CHURN_PLAN.format(demo_inference_url=demo.inference_db_url)
    policy.write_text(policy_text(inference_url, stages) + churn)
    return {
        **copy_demo_env(demo, folder),
        "MLOPS_POLICY_FILE": str(policy),
        "MLOPS_INFERENCE_DB_URL": inference_url,
    }


def approved_request(settings: Settings, registry: Registry, model: str = MODEL) -> int:
    request = request_promotion(settings, registry, REQUESTER, model, "3", "better and fair")
    approved = approve(settings, registry, APPROVER, request.id, "ok, in stages")
    assert approved.status == "approved", approved
    return request.id


def started(
    store: Settings, registry: Registry, folder: Path, panel_db_url: str, stages: str
) -> tuple[Settings, RolloutView]:
    """A fresh panel database and inference log, and credit-default v3's rollout started."""
    clean_registry(registry)
    settings = rollout_settings(store, folder, panel_db_url, stages)
    return settings, approved_rollout(settings, registry)


def approved_rollout(settings: Settings, registry: Registry, model: str = MODEL) -> RolloutView:
    request_id = approved_request(settings, registry, model)
    return start_rollout(settings, registry, APPROVER, request_id)


class Clock:
    """The router's clock: a minute passes at every `tick`, so it reads the registry again."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds

    def tick(self) -> None:
        self.seconds += 60


@dataclass
class Traffic:
    settings: Settings
    scorer_for: Callable[[str, str, str], Scorer] = sklearn_scorer
    clock: Clock = field(default_factory=Clock)
    labels: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def __post_init__(self) -> None:
        self.router = Router(
            self.settings.tracking_uri,
            MODEL,
            self.settings.inference_db_url,
            TABLE,
            refresh_seconds=30,
            scorer_for=self.scorer_for,
            clock=self.clock,
        )

    def send(self, n: int) -> None:
        frame = CREDIT.generate(n, self.rng, 0.0)
        ids = [f"req-{self.sent + i}" for i in range(n)]
        self.sent += n
        requests = list(zip(ids, frame[CREDIT.features].to_dict("records"), strict=True))
        self.router.handle_batch(requests)
        self.labels.update(zip(ids, frame[CREDIT.target].astype(int), strict=True))
        self.router.flush()
        self.clock.tick()

    def label_all(self) -> int:
        return log_labels(self.settings.inference_db_url, TABLE, self.labels)

    def log(self) -> pd.DataFrame:
        return pd.read_sql_table(TABLE, db.get_engine(self.settings.inference_db_url))

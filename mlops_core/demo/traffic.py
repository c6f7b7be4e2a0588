"""The demo's credit-default traffic, replayed through the rollout's routing core.

Weeks of requests pass through `rollout.router.Router` the way a production router would
have answered them, reading the rollout state the panel published in the registry: the
weeks before the rollout go to the champion alone; once the demo approver has started v3's
rollout, its 10% stage sends v3 the requests whose bucket is under 10. So the rows the
rollout's guardrails judge (served, latency_ms, error included) come from the contract
itself, not from a second copy of its rules.

A replay cannot time the past, so the router's stopwatch is a simulated service: each
scoring call takes a latency drawn from a fixed-seed lognormal distribution (tens of
milliseconds), which keeps the demo deterministic. Labels arrive as the scenario says
(`labelled`), set on every row of a request before the rows are written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import text

from mlops_core.config import Settings
from mlops_core.demo.data import ModelSpec
from mlops_core.rollout.router import Router, Scorer
from mlops_core.stores.db import get_engine
from mlops_core.stores.registry import Registry

# Requests of a day are answered as one micro-batch.
BATCH = "1D"
LATENCY_MEDIAN_MS = 40.0
LATENCY_SPREAD = 0.35
SEED = 20260106


class SimulatedService:
    """A stopwatch whose every reading is one simulated service time after the last."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = np.random.default_rng(seed)
        self.seconds = 0.0

    def __call__(self) -> float:
        self.seconds += self.rng.lognormal(np.log(LATENCY_MEDIAN_MS), LATENCY_SPREAD) / 1000
        return self.seconds


def replay(
    settings: Settings,
    spec: ModelSpec,
    models: dict[str, Pipeline],
    requests: pd.DataFrame,
    table: str,
) -> int:
    """Route `requests` (timestamp, request_id, features, label if it arrived) through the
    router, one day at a time, and append the logged rows to `table`; rows written."""

    def scorer_for(version: str) -> Scorer:
        return lambda features: models[version].predict_proba(features)[:, 1]

    router = Router(
        Registry(settings.tracking_uri), spec.name, scorer_for, stopwatch=SimulatedService()
    )
    days = requests["timestamp"].dt.floor(BATCH)
    for _, day in requests.groupby(days, sort=True):
        pairs = zip(day["request_id"], day[spec.features].to_dict("records"), strict=True)
        router.handle_batch(list(pairs), [t.to_pydatetime() for t in day["timestamp"]])
    rows = router.take_rows()
    labels = requests.set_index("request_id")["label"]
    rows["label"] = rows["request_id"].map(labels).astype("Int64")
    rows["score"] = rows["score"].round(6)
    rows = rows.sort_values(["timestamp", "model_version"], kind="stable", ignore_index=True)
    rows.to_sql(table, get_engine(settings.inference_db_url), index=False, if_exists="append")
    return len(rows)


def logged_until(settings: Settings, table: str) -> pd.Timestamp | None:
    """The newest timestamp in `table`, None when it has no rows."""
    with get_engine(settings.inference_db_url).connect() as connection:
        newest = connection.execute(text(f'SELECT MAX(timestamp) FROM "{table}"')).scalar()
    return None if newest is None else pd.Timestamp(newest)

"""A reference router for the panel's rollout contract (see README, "Staged rollouts").

The panel does not serve models; it publishes each model's rollout in the MLflow registry.
`mlops_core.rollout.router.Router` follows it (which version answers a request, shadow
scoring, the inference-log rows); this file is a deployment of it: it loads the registered
versions from MLflow, appends the logged rows to a SQL inference log, and fills in labels
when the truth arrives.

    router = Router("http://mlflow:5000", "credit-default", "postgresql://.../inference",
                    "inference_credit_default")
    answer = router.handle("req-42", {"income": 52_000, ...})
    router.flush()   # append the logged rows to the inference log
    log_labels("postgresql://.../inference", "inference_credit_default", {"req-42": 0})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import mlflow.artifacts
import mlflow.sklearn
from mlflow import MlflowClient
from sqlalchemy import MetaData, Table, bindparam, create_engine, inspect, update

from mlops_core.rollout import router
from mlops_core.rollout.router import Scorer
from mlops_core.stores.registry import Registry


def sklearn_scorer(tracking_uri: str, model: str, version: str) -> Scorer:
    """The registered version as MLflow stored it; scores a request with predict_proba."""
    where = MlflowClient(tracking_uri=tracking_uri).get_model_version_download_uri(model, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=where, tracking_uri=tracking_uri)
    estimator = mlflow.sklearn.load_model(local)
    return lambda features: estimator.predict_proba(features)[:, 1]


class Router(router.Router):
    """The routing core, scoring MLflow's registered versions into a SQL inference log."""

    def __init__(
        self,
        tracking_uri: str,
        model: str,
        inference_db_url: str,
        table: str,
        champion_alias: str = "champion",
        refresh_seconds: float = 30.0,
        # (tracking URI, model, version) -> the version's scorer, made once per version
        scorer_for: Callable[[str, str, str], Scorer] = sklearn_scorer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            Registry(tracking_uri),
            model,
            lambda version: scorer_for(tracking_uri, model, version),
            champion_alias,
            refresh_seconds,
            clock,
        )
        self.engine = create_engine(inference_db_url)
        self.table = table

    def flush(self) -> int:
        """Append the logged rows to the inference log; how many were written."""
        rows = self.take_rows()
        if not rows.empty:
            rows.to_sql(self.table, self.engine, index=False, if_exists="append")
        return len(rows)


def log_labels(inference_db_url: str, table: str, labels: Mapping[str, int]) -> int:
    """Record the true outcome of requests (every row of each request id); rows updated."""
    engine = create_engine(inference_db_url)
    if not inspect(engine).has_table(table):
        return 0
    log = Table(table, MetaData(), autoload_with=engine)
    statement = (
        update(log).where(log.c.request_id == bindparam("rid")).values(label=bindparam("truth"))
    )
    with engine.begin() as connection:
        result = connection.execute(
            statement, [{"rid": rid, "truth": int(truth)} for rid, truth in labels.items()]
        )
    return result.rowcount

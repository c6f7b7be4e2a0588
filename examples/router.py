"""A reference router for the panel's rollout contract (see README, "Staged rollouts").

The panel does not serve models; it publishes each model's rollout in the MLflow registry,
and a router like this one follows it:

- alias `champion` answers every request not given to the challenger;
- alias `challenger` with tag `mlops.rollout.mode`: `shadow` scores every request with the
  challenger too, but serves the champion's answer; `split` gives the challenger the
  requests whose stable bucket (`mlops_core.rollout.traffic.bucket` of the request id) is
  under `mlops.rollout.traffic` percent;
- no `challenger` alias, no mode tag, or a traffic tag that is not a number in 0-100: all
  traffic to the champion.

It reads that state at most every `refresh_seconds` and writes one inference-log row per
version that scored a request: request_id, timestamp, model, model_version, served,
features, score, prediction, latency_ms, error (the exception's text, else empty) and an
empty label, which `log_labels` fills in when the truth arrives.

    router = Router("http://mlflow:5000", "credit-default", "postgresql://.../inference",
                    "inference_credit_default")
    answer = router.handle("req-42", {"income": 52_000, ...})
    router.flush()   # append the logged rows to the inference log
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow.artifacts
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sqlalchemy import MetaData, Table, bindparam, create_engine, inspect, update

from mlops_core.rollout.publish import CHALLENGER, TAG_MODE, TAG_TRAFFIC, parse_traffic
from mlops_core.rollout.traffic import serves_challenger

# A version's scorer: the features of requests -> each one's positive-class probability.
Scorer = Callable[[pd.DataFrame], np.ndarray]
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class RoutingState:
    champion: str | None
    challenger: str | None
    mode: str | None
    traffic: float


@dataclass(frozen=True)
class Answer:
    request_id: str
    version: str
    score: float | None
    prediction: int | None
    error: str | None


def read_state(client: MlflowClient, model: str, champion_alias: str) -> RoutingState:
    registered = client.get_registered_model(model)
    aliases = {a: str(v) for a, v in registered.aliases.items()}
    tags = dict(registered.tags)
    mode = tags.get(TAG_MODE)
    challenger = aliases.get(CHALLENGER) if mode in ("shadow", "split") else None
    return RoutingState(
        champion=aliases.get(champion_alias),
        challenger=challenger,
        mode=mode if challenger else None,
        traffic=parse_traffic(tags.get(TAG_TRAFFIC)) if challenger else 0.0,
    )


def sklearn_scorer(tracking_uri: str, model: str, version: str) -> Scorer:
    """The registered version as MLflow stored it; scores a request with predict_proba."""
    where = MlflowClient(tracking_uri=tracking_uri).get_model_version_download_uri(model, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=where, tracking_uri=tracking_uri)
    estimator = mlflow.sklearn.load_model(local)
    return lambda features: estimator.predict_proba(features)[:, 1]


class Router:
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
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.model = model
        self.engine = create_engine(inference_db_url)
        self.table = table
        self.champion_alias = champion_alias
        self.refresh_seconds = refresh_seconds
        self.scorer_for = scorer_for
        self.clock = clock
        self._state: RoutingState | None = None
        self._read_at = float("-inf")
        self._scorers: dict[str, Scorer] = {}
        self._pending: list[dict[str, Any]] = []

    def state(self) -> RoutingState:
        """The registry's rollout state, read again once `refresh_seconds` have passed."""
        if self._state is None or self.clock() - self._read_at >= self.refresh_seconds:
            self._state = read_state(self.client, self.model, self.champion_alias)
            self._read_at = self.clock()
        return self._state

    def _scorer(self, version: str) -> Scorer:
        if version not in self._scorers:
            self._scorers[version] = self.scorer_for(self.tracking_uri, self.model, version)
        return self._scorers[version]

    def _score(
        self, version: str, ids: list[str], features: pd.DataFrame, served: bool, at: datetime
    ) -> list[Answer]:
        """Score a micro-batch with one version; every request in it waited the batch's
        latency, and a failure fails each of them."""
        scores: list[float | None] = [None] * len(ids)
        error, started = None, None
        try:
            # Loading a version is not part of answering the requests: not timed.
            scorer = self._scorer(version)
            started = time.perf_counter()
            scores = [float(x) for x in scorer(features)]
        except Exception as exc:  # a failing version is logged, never crashes the router
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = None if started is None else round((time.perf_counter() - started) * 1000, 3)
        answers = []
        for request_id, score, row in zip(ids, scores, features.to_dict("records"), strict=True):
            prediction = None if score is None else int(score >= DECISION_THRESHOLD)
            self._pending.append(
                {
                    "request_id": request_id,
                    "timestamp": at,
                    "model": self.model,
                    "model_version": version,
                    "served": served,
                    **row,
                    "score": score,
                    "prediction": prediction,
                    "latency_ms": latency_ms,
                    "error": error,
                    "label": None,
                }
            )
            answers.append(Answer(request_id, version, score, prediction, error))
        return answers

    def handle(
        self, request_id: str, features: Mapping[str, Any], at: datetime | None = None
    ) -> Answer:
        """Answer one request by the published state; log every version that scored it."""
        return self.handle_batch([(request_id, features)], at)[0]

    def handle_batch(
        self, requests: Sequence[tuple[str, Mapping[str, Any]]], at: datetime | None = None
    ) -> list[Answer]:
        """Answer requests that arrived together, each version scoring its share at once."""
        state = self.state()
        if state.champion is None:
            raise LookupError(f"{self.model} has no {self.champion_alias} alias to serve.")
        at = at or datetime.now(UTC).replace(tzinfo=None)
        ids = [request_id for request_id, _ in requests]
        frame = pd.DataFrame([dict(features) for _, features in requests])
        split = state.challenger is not None and state.mode == "split"
        to_challenger = np.array(
            [split and serves_challenger(request_id, state.traffic) for request_id in ids]
        )
        groups = [(state.champion, ~to_challenger, True)]
        if split:
            groups.append((state.challenger, to_challenger, True))
        elif state.mode == "shadow" and state.challenger is not None:
            groups.append((state.challenger, np.ones(len(ids), dtype=bool), False))
        answers: dict[str, Answer] = {}
        for version, chosen, served in groups:
            if not chosen.any():
                continue
            picked = [i for i, keep in enumerate(chosen) if keep]
            scored = self._score(
                version,
                [ids[i] for i in picked],
                frame.iloc[picked].reset_index(drop=True),
                served,
                at,
            )
            if served:
                answers.update((answer.request_id, answer) for answer in scored)
        return [answers[request_id] for request_id in ids]

    def flush(self) -> int:
        """Append the logged rows to the inference log; how many were written."""
        rows, self._pending = self._pending, []
        if rows:
            frame = pd.DataFrame(rows)
            frame["label"] = frame["label"].astype("Int64")
            frame.to_sql(self.table, self.engine, index=False, if_exists="append")
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

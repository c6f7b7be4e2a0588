"""The routing core of the serving contract: which version answers a request, and the log.

A router follows a model's rollout as `publish` writes it in the registry:

- alias `champion` answers every request not given to the challenger;
- alias `challenger` with tag `mlops.rollout.mode`: `shadow` scores every request with the
  challenger too, but serves the champion's answer; `split` gives the challenger the
  requests whose stable bucket (`traffic.serves_challenger`) is under
  `mlops.rollout.traffic` percent;
- no `challenger` alias, no mode tag, or a traffic tag that is not a number in 0-100: all
  traffic to the champion.

`Router` reads that state at most every `refresh_seconds`, scores each micro-batch with
the versions it goes to, and keeps one inference-log row per version that scored a
request: request_id, timestamp, model, model_version, served, the features, score,
prediction, latency_ms, error (the exception's text, else empty) and an empty label.
Where the rows go and how versions are loaded belong to the deployment:
`examples/router.py` serves registered MLflow models into a SQL table; the demo replays
weeks of past traffic through the same class, so its log follows the same contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_core.rollout.publish import CHALLENGER, TAG_MODE, TAG_TRAFFIC, parse_traffic
from mlops_core.rollout.traffic import serves_challenger
from mlops_core.stores.registry import Registry

# A version's scorer: the features of requests -> each one's positive-class probability.
Scorer = Callable[[pd.DataFrame], np.ndarray]
DECISION_THRESHOLD = 0.5
# The columns a router writes next to the features; none is a model input.
LOG_COLUMNS = ("request_id", "served", "latency_ms", "error")


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


def read_state(registry: Registry, model: str, champion_alias: str) -> RoutingState:
    aliases, tags = registry.aliases_and_tags(model)
    mode = tags.get(TAG_MODE)
    challenger = aliases.get(CHALLENGER) if mode in ("shadow", "split") else None
    return RoutingState(
        champion=aliases.get(champion_alias),
        challenger=challenger,
        mode=mode if challenger else None,
        traffic=parse_traffic(tags.get(TAG_TRAFFIC)) if challenger else 0.0,
    )


class Router:
    def __init__(
        self,
        registry: Registry,
        model: str,
        # version -> its scorer, made once per version
        scorer_for: Callable[[str], Scorer],
        champion_alias: str = "champion",
        refresh_seconds: float = 30.0,
        # When to read the registry again; a replay passes the replayed time.
        clock: Callable[[], float] = time.monotonic,
        # The stopwatch of a scoring call, in seconds.
        stopwatch: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.registry = registry
        self.model = model
        self.scorer_for = scorer_for
        self.champion_alias = champion_alias
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.stopwatch = stopwatch
        self._state: RoutingState | None = None
        self._read_at = float("-inf")
        self._scorers: dict[str, Scorer] = {}
        self._pending: list[dict[str, Any]] = []

    def state(self) -> RoutingState:
        """The registry's rollout state, read again once `refresh_seconds` have passed."""
        if self._state is None or self.clock() - self._read_at >= self.refresh_seconds:
            self._state = read_state(self.registry, self.model, self.champion_alias)
            self._read_at = self.clock()
        return self._state

    def _scorer(self, version: str) -> Scorer:
        if version not in self._scorers:
            self._scorers[version] = self.scorer_for(version)
        return self._scorers[version]

    def _score(
        self,
        version: str,
        ids: list[str],
        features: pd.DataFrame,
        served: bool,
        times: list[datetime],
    ) -> list[Answer]:
        """Score a micro-batch with one version; every request in it waited the batch's
        latency, and a failure fails each of them."""
        scores: list[float | None] = [None] * len(ids)
        error, started = None, None
        try:
            # Loading a version is not part of answering the requests: not timed.
            scorer = self._scorer(version)
            started = self.stopwatch()
            scores = [float(x) for x in scorer(features)]
        except Exception as exc:  # a failing version is logged, never crashes the router
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = None if started is None else round((self.stopwatch() - started) * 1000, 3)
        answers = []
        rows = features.to_dict("records")
        for request_id, score, row, at in zip(ids, scores, rows, times, strict=True):
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
        self,
        requests: Sequence[tuple[str, Mapping[str, Any]]],
        at: datetime | Sequence[datetime] | None = None,
    ) -> list[Answer]:
        """Answer requests that arrived together, each version scoring its share at once.
        `at`: when they arrived (now by default), one time for all or one per request."""
        state = self.state()
        if state.champion is None:
            raise LookupError(f"{self.model} has no {self.champion_alias} alias to serve.")
        if at is None or isinstance(at, datetime):
            times = [at or datetime.now(UTC).replace(tzinfo=None)] * len(requests)
        else:
            times = list(at)
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
            picked = np.flatnonzero(chosen)
            scored = self._score(
                version,
                [ids[i] for i in picked],
                frame.iloc[picked].reset_index(drop=True),
                served,
                [times[i] for i in picked],
            )
            if served:
                answers.update((answer.request_id, answer) for answer in scored)
        return [answers[request_id] for request_id in ids]

    def take_rows(self) -> pd.DataFrame:
        """The log rows kept since the last call (label: a nullable integer)."""
        rows, self._pending = self._pending, []
        frame = pd.DataFrame(rows)
        if not frame.empty:
            frame["label"] = frame["label"].astype("Int64")
        return frame

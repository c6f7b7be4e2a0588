"""The columns of an inference log and its labelled rows as arrays the metrics take.

One row per (request, version that scored it): a shadow deployment logs a row for each
version on the same request id, split traffic one row for the version that served it.
Labels arrive later or never: a row without one is counted, never scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInput
from mlops_core.policy import DataSources, MonitoringPolicy


@dataclass(frozen=True)
class LogColumns:
    timestamp: str = "timestamp"
    version: str = "model_version"
    label: str = "label"
    score: str | None = "score"
    prediction: str | None = "prediction"
    request_id: str | None = "request_id"
    positive_label: int | bool | str = 1
    decision_threshold: float = 0.5

    @classmethod
    def of(cls, data: DataSources, monitoring: MonitoringPolicy) -> LogColumns:
        return cls(
            timestamp=data.timestamp_column,
            version=monitoring.version_column,
            label=data.label_column,
            score=data.score_column,
            prediction=data.prediction_column,
            request_id=data.id_column,
            positive_label=monitoring.positive_label,
            decision_threshold=monitoring.decision_threshold,
        )

    def names(self) -> list[str]:
        """Every column the log may have for quality: required and optional ones."""
        named = (self.timestamp, self.version, self.label, self.score, self.prediction)
        return [c for c in (*named, self.request_id) if c is not None]

    def require(self, frame: pd.DataFrame) -> None:
        missing = [c for c in (self.timestamp, self.version, self.label) if c not in frame]
        if missing:
            raise InvalidInput(
                f"The inference log has no column {', '.join(map(repr, missing))}: quality "
                "needs the timestamp, the version that scored each row and the label "
                "(policy data.timestamp_column, data.label_column, monitoring.version_column)."
            )

    def has_score(self, frame: pd.DataFrame) -> bool:
        return self.score is not None and self.score in frame

    def has_request_id(self, frame: pd.DataFrame) -> bool:
        return self.request_id is not None and self.request_id in frame


@dataclass(frozen=True)
class Labelled:
    """A version's labelled rows: 0/1 labels and predictions for a classifier (with the
    positive class's score when logged), values for a regressor."""

    labels: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray | None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Labelled:
        scores = None if self.scores is None else self.scores[index]
        return Labelled(self.labels[index], self.predicted[index], scores)


def labelled_rows(frame: pd.DataFrame, columns: LogColumns, task: str) -> Labelled:
    """The rows of `frame` that have a label, as arrays (in the frame's order)."""
    rows = frame[frame[columns.label].notna()]
    has_score = columns.has_score(rows)
    has_prediction = columns.prediction is not None and columns.prediction in rows
    if task == "regression":
        source = columns.prediction if has_prediction else columns.score if has_score else None
        if source is None:
            raise InvalidInput("The inference log has no prediction or score column.")
        return Labelled(
            _numbers(rows[columns.label], columns.label),
            _numbers(rows[source], source),
            None,
        )
    labels = (rows[columns.label] == columns.positive_label).to_numpy(dtype=float)
    scores = _numbers(rows[columns.score], columns.score) if has_score else None
    if has_prediction:
        predicted = (rows[columns.prediction] == columns.positive_label).to_numpy(dtype=float)
    elif scores is not None:
        predicted = (scores >= columns.decision_threshold).astype(float)
    else:
        raise InvalidInput("The inference log has no prediction or score column.")
    if scores is not None and len(scores) and (np.nanmin(scores) < 0 or np.nanmax(scores) > 1):
        raise InvalidInput(
            f"Column {columns.score!r} holds values outside [0, 1]: a classifier's score is the "
            "probability of the positive class."
        )
    return Labelled(labels, predicted, scores)


def _numbers(values: pd.Series, name: str | None) -> np.ndarray:
    try:
        numbers = pd.to_numeric(values).to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"Column {name!r} of the inference log holds non-numbers.") from None
    if np.isnan(numbers).any():
        raise InvalidInput(f"Column {name!r} of the inference log has empty values.")
    return numbers

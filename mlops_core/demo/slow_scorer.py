"""The demo's slow model: a custom MLflow pyfunc around a scikit-learn pipeline.

It answers exactly what the pipeline answers, but every `SLOW_EVERY`-th call waits
`PAUSE_S` first, like a scorer whose cache goes cold now and then. Most calls stay fast, so
the median looks fine, and the tail is what a latency gate on p99 is for: credit-default
v2 is logged through it and its behaviour checks fail a 50 ms p99 gate.

One call in 16 (6 %) rather than one in 20: with more than 5 % of calls slow, the p95 lies
in the tail too, so the latency histogram's p95 and p99 lines both stand past the gate.

The probe subprocess unpickles this class by reference, so it must stay importable as
`mlops_core.demo.slow_scorer` (the sandbox puts the project on its path).
"""

from __future__ import annotations

import time
from typing import Any

import mlflow.pyfunc
import pandas as pd

SLOW_EVERY = 16
PAUSE_S = 0.060


class SlowTailScorer(mlflow.pyfunc.PythonModel):
    """The wrapped pipeline's own predictions, with a slow call every `SLOW_EVERY` calls."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.calls = 0

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # The count starts again with each loaded copy, as a cache would start cold.
        self.calls = 0

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> Any:
        self.calls += 1
        if self.calls % SLOW_EVERY == 0:
            time.sleep(PAUSE_S)
        return self.pipeline.predict(model_input)

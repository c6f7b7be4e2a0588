"""Custom pyfunc models that misbehave on purpose, for the behaviour checks' tests.

Logged with `code_paths` under the top-level name `behaviour_models`, so only the sandbox
that loads them imports this module: the test process that calls `run_checks` must not.
"""

from __future__ import annotations

import time

import mlflow.pyfunc
import numpy as np
import pandas as pd


class NoisyModel(mlflow.pyfunc.PythonModel):
    """A different answer every call: not deterministic."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return np.random.default_rng().random(len(model_input))


class SlowModel(mlflow.pyfunc.PythonModel):
    """Correct but slow: every call sleeps."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        time.sleep(self.seconds)
        return np.zeros(len(model_input))


class HungryModel(mlflow.pyfunc.PythonModel):
    """Allocates more memory on load than the sandbox allows."""

    def __init__(self, megabytes: int) -> None:
        self.megabytes = megabytes

    def load_context(self, context) -> None:
        self.ballast = bytearray(self.megabytes * 1024 * 1024)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return np.zeros(len(model_input))


class StuckModel(mlflow.pyfunc.PythonModel):
    """Never answers."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        while True:
            time.sleep(1)

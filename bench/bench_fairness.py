"""Time mlops_core.evidence.fairness against a plain pandas group-by and Fairlearn's MetricFrame.

    .venv/bin/python bench/bench_fairness.py [--rows 1000000] [--repeats 5]

All run in the same process on the same generated data (a label, a score, and two sensitive
features with 2 and 5 groups; each feature and their intersection is evaluated), each timed
as the best of a few repeats. The pandas baseline is timed two ways - one group-by per
feature, and a single group-by of the intersection whose sums give the two features - and
all numbers are checked against each other before the figures are printed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fairlearn
import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_core.evidence.fairness import FairnessConfig, FairnessReport, evaluate_fairness  # noqa: E402

SENSITIVE = ["gender", "age_band"]
FEATURES = [["gender"], ["age_band"], ["gender", "age_band"]]
THRESHOLD = 0.5
TOLERANCE = 1e-9
OUTCOMES = ["tp", "fp", "fn", "tn"]
CONFIG = FairnessConfig(
    label="label",
    score="score",
    threshold=THRESHOLD,
    sensitive=SENSITIVE,
    max_disparity={"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1},
)
METRICS = {
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "precision": precision_score,
    "accuracy": accuracy_score,
    "count": count,
}


def make_data(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gender = rng.choice(["F", "M"], size=rows, p=[0.45, 0.55])
    age_band = rng.choice(
        ["18-25", "26-35", "36-45", "46-60", "60+"], size=rows, p=[0.15, 0.3, 0.25, 0.2, 0.1]
    )
    logit = rng.normal(0.0, 1.0, rows) + 0.3 * (gender == "M") - 0.2 * (age_band == "60+")
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    score = 1 / (1 + np.exp(-(logit + rng.normal(0.0, 1.0, rows))))
    # Object (string) columns, as a CSV or a SQL query would deliver them.
    return pd.DataFrame({"gender": gender, "age_band": age_band, "label": label, "score": score})


def run_panel(df: pd.DataFrame) -> FairnessReport:
    return evaluate_fairness(df, CONFIG)


def _outcomes(df: pd.DataFrame) -> pd.DataFrame:
    actual = df["label"].to_numpy() == 1
    predicted = df["score"].to_numpy() >= THRESHOLD
    return pd.DataFrame(
        {
            "tp": actual & predicted,
            "fp": ~actual & predicted,
            "fn": actual & ~predicted,
            "tn": ~actual & ~predicted,
            **{name: df[name] for name in SENSITIVE},
        }
    )


def run_groupby(df: pd.DataFrame) -> list[pd.DataFrame]:
    """The same confusion counts per group with one ordinary pandas group-by per feature."""
    outcomes = _outcomes(df)
    return [outcomes.groupby(keys, dropna=False)[OUTCOMES].sum() for keys in FEATURES]


def run_groupby_once(df: pd.DataFrame) -> list[pd.DataFrame]:
    """One group-by on the intersection; each feature's counts are its sums (the leaner way)."""
    joint = _outcomes(df).groupby(SENSITIVE, dropna=False)[OUTCOMES].sum()
    return [joint.groupby(level=0).sum(), joint.groupby(level=1).sum(), joint]


def run_metricframe(df: pd.DataFrame) -> list[dict[str, Any]]:
    """MetricFrame per feature with the panel's rates, plus its between-group aggregates."""
    y_true = df["label"].to_numpy()
    y_pred = (df["score"].to_numpy() >= THRESHOLD).astype(int)
    results = []
    for keys in FEATURES:
        frame = MetricFrame(
            metrics=METRICS,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=df[keys] if len(keys) > 1 else df[keys[0]],
        )
        results.append(
            {"by_group": frame.by_group, "difference": frame.difference(), "ratio": frame.ratio()}
        )
    return results


def best_time(function: Callable[[pd.DataFrame], Any], df: pd.DataFrame, repeats: int):
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(df)
        best = min(best, time.perf_counter() - start)
    return best, result


def _by_label(table: pd.DataFrame) -> pd.DataFrame:
    """Index a group-by result by the panel's group names ("F&18-25" for the intersection)."""
    return table.set_axis(
        ["&".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in table.index]
    )


def check_agreement(
    report: FairnessReport, grouped: list[pd.DataFrame], frames: list[dict[str, Any]]
) -> float:
    """Largest absolute difference to MetricFrame; raises if any number disagrees."""
    worst = 0.0
    for result, counts, frame in zip(report.features, grouped, frames, strict=True):
        counts = _by_label(counts)
        by_group = _by_label(frame["by_group"].dropna(subset=["count"]))
        assert sorted(g.group for g in result.groups) == sorted(by_group.index)
        for group in result.groups:
            assert (
                group.count == counts.loc[group.group].sum() == by_group.loc[group.group, "count"]
            )
            fl_row = by_group.loc[group.group]
            for name in ("selection_rate", "tpr", "fpr", "precision", "accuracy"):
                worst = max(worst, abs(getattr(group, name) - fl_row[name]))
        diff, ratio = frame["difference"], frame["ratio"]
        expected = {
            "demographic_parity_difference": diff["selection_rate"],
            "demographic_parity_ratio": ratio["selection_rate"],
            "equalized_odds_difference": max(diff["tpr"], diff["fpr"]),
            "equal_opportunity_difference": diff["tpr"],
        }
        for metric, value in expected.items():
            worst = max(worst, abs(result.disparity(metric) - value))
    if not worst <= TOLERANCE:
        raise AssertionError(f"panel and MetricFrame differ by {worst:.3g} > {TOLERANCE}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the fast runs")
    parser.add_argument("--metricframe-repeats", type=int, default=3)
    args = parser.parse_args()

    df = make_data(args.rows)
    warnings.simplefilter("ignore")  # sklearn's zero-division warnings would only add noise
    t_panel, report = best_time(run_panel, df, args.repeats)
    t_groupby, grouped = best_time(run_groupby, df, args.repeats)
    t_once, grouped_once = best_time(run_groupby_once, df, args.repeats)
    t_frame, frames = best_time(run_metricframe, df, args.metricframe_repeats)
    worst = check_agreement(report, grouped, frames)
    check_agreement(report, grouped_once, frames)

    print(
        f"python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"fairlearn {fairlearn.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(f"rows: {args.rows:,}; features: gender (2), age_band (5), gender&age_band (10)")
    print(f"evaluate_fairness       {t_panel * 1000:10.1f} ms  (best of {args.repeats})")
    print(f"group-by per feature    {t_groupby * 1000:10.1f} ms  (best of {args.repeats})")
    print(f"group-by once + sums    {t_once * 1000:10.1f} ms  (best of {args.repeats})")
    print(
        f"fairlearn MetricFrame   {t_frame * 1000:10.1f} ms  (best of {args.metricframe_repeats})"
    )
    print(f"panel / per feature     {t_panel / t_groupby:10.2f} x  (target <= 2)")
    print(f"panel / once + sums     {t_panel / t_once:10.2f} x  (target <= 2)")
    print(f"MetricFrame / panel     {t_frame / t_panel:10.1f} x  (target >= 10)")
    print(f"largest difference to MetricFrame: {worst:.2e} (tolerance {TOLERANCE:g}); counts equal")


if __name__ == "__main__":
    main()

"""Time the live comparison of two versions in shadow against scikit-learn per resample.

    .venv/bin/python bench/bench_quality.py [--rows 1000000] [--resamples 1000] \
        [--peer-resamples 10]

One window of `--rows` labelled requests, each scored by v1 and v3 (shadow, joined by the
request id): the panel computes every classification metric of both versions (ROC AUC, PR
AUC, F1, precision, recall, accuracy, log loss, Brier score, ECE), DeLong's test and a
paired bootstrap of `--resamples` resamples with intervals for each metric
(`evidence.live_comparison.compare_live`, timed end to end from the DataFrame of rows).

The peer does the same the way one would with scikit-learn: join the two versions' rows on
the request id, call each metric of both versions on the full rows, then for every resample
draw row indices with replacement and call the same metric functions again. A full peer run
at a million rows takes hours, so it runs `--peer-resamples` resamples, and its time for all
`--resamples` is extrapolated linearly (each resample costs the same); the output says so.
Both sides' point estimates are checked against each other (1e-9) before figures are
printed, and their interval widths are shown side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn import metrics as sk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_core.evidence.live_comparison import ComparisonConfig, compare_live  # noqa: E402

TOLERANCE = 1e-9
CONFIDENCE = 0.95


def shadow_log(rows: int, seed: int = 0) -> pd.DataFrame:
    """Both versions' rows of the same requests, v3 a little better than v1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    ids = pd.Series(np.arange(rows)).map("req-{:07d}".format)
    frames = []
    for version, lift in (("1", 0.25), ("3", 0.28)):
        scores = np.round(np.clip(rng.normal(0.35 + lift * labels, 0.2), 0, 1), 6)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.Timestamp("2026-01-05"),
                    "request_id": ids,
                    "model_version": version,
                    "score": scores,
                    "prediction": (scores >= 0.5).astype(int),
                    "label": labels,
                }
            )
        )
    # The log's order: requests interleaved, as both versions write them.
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)


def ece(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.calibration import calibration_curve

    true, predicted = calibration_curve(labels, scores, n_bins=10)
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], scores)
    counts = np.bincount(bins, minlength=10)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(labels) * np.abs(true - predicted)))


def sklearn_metrics(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict:
    return {
        "roc_auc": sk.roc_auc_score(labels, scores),
        "pr_auc": sk.average_precision_score(labels, scores),
        "f1": sk.f1_score(labels, predicted),
        "precision": sk.precision_score(labels, predicted),
        "recall": sk.recall_score(labels, predicted),
        "accuracy": sk.accuracy_score(labels, predicted),
        "log_loss": sk.log_loss(labels, scores, labels=[0, 1]),
        "brier_score": sk.brier_score_loss(labels, scores),
        "ece": ece(labels, scores),
    }


def sklearn_peer(frame: pd.DataFrame, resamples: int) -> tuple[dict, dict, float, dict]:
    """Point estimates of both versions and `resamples` paired bootstrap replicates of the
    differences; returns (values of v1, values of v3, seconds, interval widths)."""
    started = time.perf_counter()
    a = frame[frame["model_version"] == "1"]
    b = frame[frame["model_version"] == "3"]
    joined = a.merge(b, on="request_id", suffixes=("_a", "_b"))
    labels = joined["label_a"].to_numpy()
    sides = [(joined[f"score_{s}"].to_numpy(), joined[f"prediction_{s}"].to_numpy()) for s in "ab"]
    values = [sklearn_metrics(labels, scores, predicted) for scores, predicted in sides]
    rng = np.random.default_rng(1)
    differences: dict[str, list[float]] = {m: [] for m in values[0]}
    for _ in range(resamples):
        index = rng.integers(0, len(labels), len(labels))
        drawn = [sklearn_metrics(labels[index], s[index], p[index]) for s, p in sides]
        for metric in differences:
            differences[metric].append(drawn[1][metric] - drawn[0][metric])
    # Too few resamples for percentiles: the normal interval's width from their spread.
    widths = {m: float(2 * 1.96 * np.std(d, ddof=1)) for m, d in differences.items()}
    return values[0], values[1], time.perf_counter() - started, widths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--peer-resamples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    frame = shadow_log(args.rows)
    config = ComparisonConfig("1", "3", confidence=CONFIDENCE, n_resamples=args.resamples)
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        comparison = compare_live(frame, config)
        timings.append(time.perf_counter() - started)
    ours = min(timings)

    peer_a, peer_b, peer_seconds, peer_widths = sklearn_peer(frame, args.peer_resamples)
    per_resample = peer_seconds / (args.peer_resamples + 1)
    peer_full = per_resample * (args.resamples + 1)
    for found in comparison.metrics:
        for mine, theirs in ((found.champion, peer_a), (found.challenger, peer_b)):
            if abs(mine - theirs[found.metric]) > TOLERANCE:
                raise SystemExit(f"{found.metric}: {mine} != scikit-learn {theirs[found.metric]}")

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs"
    )
    print(
        f"{args.rows:,} labelled requests in shadow (v1 and v3 each score every one: "
        f"{len(frame):,} log rows), {len(comparison.metrics)} metrics per version, "
        f"{args.resamples:,} paired bootstrap resamples, {CONFIDENCE:.0%} intervals"
    )
    print(f"panel compare_live:           {ours:8.2f} s (best of {args.repeats})")
    print(
        f"scikit-learn per resample:    {peer_full:8.1f} s extrapolated from "
        f"{args.peer_resamples} resamples + the point estimates ({peer_seconds:.1f} s measured, "
        f"{per_resample:.2f} s per resample)"
    )
    print(f"speed-up:                     {peer_full / ours:8.0f}x")
    print("point estimates equal scikit-learn's to 1e-9 for both versions")
    print(
        f"\n{'metric':<12} {'difference':>11} {'panel 95% CI':>24} {'width':>8} {'peer width':>11}"
    )
    for found in comparison.metrics:
        interval = f"[{found.ci_low:+.5f}, {found.ci_high:+.5f}]"
        print(
            f"{found.metric:<12} {found.difference:+11.5f} {interval:>24} "
            f"{found.ci_high - found.ci_low:8.5f} {peer_widths[found.metric]:11.5f}  "
            f"{found.method}"
        )
    print(
        f"(peer width: 3.92 x the spread of its {args.peer_resamples} resamples, a rough check "
        "of scale)"
    )


if __name__ == "__main__":
    main()

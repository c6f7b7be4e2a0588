"""Champion against challenger on live traffic: a pure function over inference-log rows.

Two ways the log can hold both versions:
- shadow: both versions scored every request, one row each, joined by the request id.
  The comparison is paired: a bootstrap replicate draws the same requests for both, and
  ROC AUC is judged by DeLong's test for correlated AUCs.
- split: each request was served by one version. The comparison is unpaired: each version's
  rows are resampled on their own.

The bootstrap resamples blocks of rows: the rows are dealt at random into (at most)
`n_blocks` blocks and each replicate draws that many blocks with replacement. With fewer
rows than blocks each row is its own block, the textbook bootstrap; with more, every block
sums many independent rows, and the replicates' spread is that of the row bootstrap while
the cost no longer grows with the rows (`quality_metrics` explains what a replicate of each
metric is).

Each metric gets the difference challenger - champion with a percentile confidence interval
and a verdict at the confidence level: better, worse or no significant difference, plus the
labelled rows still needed for a verdict if the difference stays what it is now.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from mlops_core.errors import InvalidInput
from mlops_core.evidence.delong import delong_ranked
from mlops_core.evidence.inference_log import Labelled, LogColumns, labelled_rows
from mlops_core.evidence.quality_metrics import (
    MetricSums,
    block_sums,
    goodness_of,
    quality_direction,
    task_metrics,
)

Mode = Literal["shadow", "split"]
Verdict = Literal["better", "worse", "no significant difference", "undefined"]
BETTER: Verdict = "better"
WORSE: Verdict = "worse"
NO_DIFFERENCE: Verdict = "no significant difference"
UNDEFINED: Verdict = "undefined"
# Shadow traffic: most of the challenger's labelled requests also carry the champion's row.
SHADOW_SHARE = 0.5


@dataclass(frozen=True)
class ComparisonConfig:
    champion: str
    challenger: str
    task: str = "classification"
    columns: LogColumns = field(default_factory=LogColumns)
    confidence: float = 0.95
    n_resamples: int = 1000
    n_blocks: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    direction: str
    champion: float
    challenger: float
    # challenger - champion, in the metric's units, with its confidence interval.
    difference: float
    ci_low: float
    ci_high: float
    # The same, as improvement (positive = the challenger is better): the gate reads these.
    gain: float
    gain_low: float
    gain_high: float
    method: str
    verdict: Verdict
    # Labelled rows (pairs in shadow) still needed for a verdict at this difference; 0 when
    # there is one, None when the two are equal and no sample size would separate them.
    rows_needed: int | None
    p_value: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LiveComparison:
    mode: Mode
    champion: str
    challenger: str
    confidence: float
    n_champion: int
    n_challenger: int
    # Requests both versions scored (shadow); None for split traffic.
    n_pairs: int | None
    n_resamples: int
    metrics: list[MetricComparison]

    @property
    def n_compared(self) -> int:
        return self.n_pairs if self.n_pairs is not None else self.n_champion + self.n_challenger

    def metric(self, name: str) -> MetricComparison:
        for found in self.metrics:
            if found.metric == name:
                return found
        raise InvalidInput(f"The comparison has no metric {name!r}.")

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "champion": self.champion,
            "challenger": self.challenger,
            "confidence": self.confidence,
            "n_champion": self.n_champion,
            "n_challenger": self.n_challenger,
            "n_pairs": self.n_pairs,
            "n_resamples": self.n_resamples,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def compare_live(frame: pd.DataFrame, config: ComparisonConfig) -> LiveComparison:
    """Compare the challenger with the champion on the labelled rows of `frame`."""
    columns = config.columns
    columns.require(frame)
    labelled = frame[frame[columns.label].notna()]
    versions = labelled[columns.version].astype(str)
    rows = {v: labelled[versions == v] for v in (config.champion, config.challenger)}
    for version, found in rows.items():
        if found.empty:
            raise InvalidInput(f"v{version} has no labelled rows in the inference log.")
    champion = labelled_rows(rows[config.champion], columns, config.task)
    challenger = labelled_rows(rows[config.challenger], columns, config.task)
    pairs = _pairs(rows[config.champion], rows[config.challenger], columns)
    rng = np.random.default_rng(config.seed)
    mode: Mode = "split" if pairs is None else "shadow"
    if pairs is not None:
        champion, challenger = champion.take(pairs[0]), challenger.take(pairs[1])
        blocks, n_blocks = _blocks(len(champion), config.n_blocks, rng)
        counts = _draws(n_blocks, config.n_resamples, rng)
        sums = (
            _sums(config.task, champion, blocks, n_blocks),
            _sums(config.task, challenger, blocks, n_blocks),
        )
        draws = (counts, counts)
    else:
        sides = []
        for side in (champion, challenger):
            blocks, n_blocks = _blocks(len(side), config.n_blocks, rng)
            draw = _draws(n_blocks, config.n_resamples, rng)
            sides.append((_sums(config.task, side, blocks, n_blocks), draw))
        sums = (sides[0][0], sides[1][0])
        draws = (sides[0][1], sides[1][1])
    n_pairs = len(champion) if mode == "shadow" else None
    n_compared = n_pairs if n_pairs is not None else len(champion) + len(challenger)
    values = (sums[0].values(), sums[1].values())
    replicates = (sums[0].replicates(draws[0]), sums[1].replicates(draws[1]))
    compared = []
    for metric in task_metrics(config.task):
        if mode == "shadow" and metric == "roc_auc" and champion.scores is not None:
            compared.append(_delong(champion.labels, sums, config.confidence, n_compared))
            continue
        compared.append(
            _bootstrap(
                metric,
                (values[0][metric], values[1][metric]),
                (replicates[0][metric], replicates[1][metric]),
                config.confidence,
                n_compared,
                "paired bootstrap" if mode == "shadow" else "unpaired bootstrap",
            )
        )
    return LiveComparison(
        mode=mode,
        champion=config.champion,
        challenger=config.challenger,
        confidence=config.confidence,
        n_champion=len(rows[config.champion]),
        n_challenger=len(rows[config.challenger]),
        n_pairs=n_pairs,
        n_resamples=config.n_resamples,
        metrics=compared,
    )


def _pairs(
    champion: pd.DataFrame, challenger: pd.DataFrame, columns: LogColumns
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of the requests both versions scored (the last row of a repeated id), when
    the traffic is shadowed."""
    if not columns.has_request_id(champion):
        return None
    key = columns.request_id
    codes, uniques = pd.factorize(pd.concat([champion[key], challenger[key]], ignore_index=True))
    last = []
    for side in (codes[: len(champion)], codes[len(champion) :]):
        position = np.full(len(uniques), -1)
        np.maximum.at(position, side, np.arange(len(side)))
        last.append(position)
    shared = (last[0] >= 0) & (last[1] >= 0)
    n_shared = int(shared.sum())
    if n_shared == 0 or n_shared < SHADOW_SHARE * min(len(champion), len(challenger)):
        return None
    return last[0][shared], last[1][shared]


def _blocks(n: int, most: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    n_blocks = max(1, min(n, most))
    return rng.permutation(n) % n_blocks, n_blocks


def _draws(n_blocks: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each block is drawn in each replicate of `n_blocks` draws with replacement.

    The law of a uniform multinomial, counted from integer draws: NumPy's multinomial
    draws one binomial per category and took most of a live comparison's time.
    """
    picks = rng.integers(0, n_blocks, size=(n_resamples, n_blocks))
    picks += np.arange(n_resamples)[:, None] * n_blocks
    counts = np.bincount(picks.ravel(), minlength=n_resamples * n_blocks)
    return counts.reshape(n_resamples, n_blocks).astype(float)


def _sums(task: str, rows: Labelled, blocks: np.ndarray, n_blocks: int) -> MetricSums:
    return block_sums(task, rows.labels, rows.predicted, rows.scores, blocks, n_blocks)


def _bootstrap(
    metric: str,
    values: tuple[float, float],
    replicates: tuple[np.ndarray, np.ndarray],
    confidence: float,
    n_compared: int,
    method: str,
) -> MetricComparison:
    champion, challenger = values
    alpha = 100 * (1 - confidence) / 2
    differences = replicates[1] - replicates[0]
    gains = goodness_of(metric, replicates[1]) - goodness_of(metric, replicates[0])
    gain = float(goodness_of(metric, challenger) - goodness_of(metric, champion))
    finite = np.isfinite(gains)
    if not (math.isfinite(gain) and finite.mean() >= confidence):
        nan = float("nan")
        return MetricComparison(
            metric, quality_direction(metric), champion, challenger, challenger - champion,
            nan, nan, gain, nan, nan, method, UNDEFINED, None,
        )  # fmt: skip
    low, high = np.percentile(differences[finite], [alpha, 100 - alpha])
    gain_low, gain_high = np.percentile(gains[finite], [alpha, 100 - alpha])
    spread = float(np.std(gains[finite], ddof=1))
    return MetricComparison(
        metric=metric,
        direction=quality_direction(metric),
        champion=champion,
        challenger=challenger,
        difference=challenger - champion,
        ci_low=float(low),
        ci_high=float(high),
        gain=gain,
        gain_low=float(gain_low),
        gain_high=float(gain_high),
        method=method,
        verdict=_verdict(float(gain_low), float(gain_high)),
        rows_needed=rows_needed(
            gain, spread, confidence, n_compared, float(gain_low), float(gain_high)
        ),
    )


def _delong(
    labels: np.ndarray, sums: tuple[MetricSums, MetricSums], confidence: float, n_compared: int
) -> MetricComparison:
    ranked = (sums[0].ranked, sums[1].ranked)
    assert ranked[0] is not None and ranked[1] is not None  # both have scores
    test = delong_ranked(labels, ranked[0], ranked[1], confidence)
    return MetricComparison(
        metric="roc_auc",
        direction="higher",
        champion=test.auc_a,
        challenger=test.auc_b,
        difference=test.difference,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        gain=test.difference,
        gain_low=test.ci_low,
        gain_high=test.ci_high,
        method="DeLong",
        verdict=_verdict(test.ci_low, test.ci_high),
        rows_needed=rows_needed(
            test.difference, test.standard_error, confidence, n_compared, test.ci_low, test.ci_high
        ),
        p_value=test.p_value,
    )


def _verdict(gain_low: float, gain_high: float) -> Verdict:
    if gain_low > 0:
        return BETTER
    if gain_high < 0:
        return WORSE
    return NO_DIFFERENCE


def rows_needed(
    gain: float, spread: float, confidence: float, n: int, gain_low: float, gain_high: float
) -> int | None:
    """Rows for the interval to exclude 0 if the difference stays `gain`: the standard
    error shrinks as 1/sqrt(rows)."""
    if gain_low > 0 or gain_high < 0:
        return 0
    if gain == 0 or not math.isfinite(spread):
        return None
    z = float(norm.ppf(0.5 + confidence / 2))
    return max(1, math.ceil(n * (z * spread / abs(gain)) ** 2 - n))

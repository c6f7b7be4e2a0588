"""Drift summary of 25 columns: Evidently's DataDriftPreset, a plain scipy loop and the panel.

    .venv/bin/python bench/bench_drift.py --rows 100000
    .venv/bin/python bench/bench_drift.py --rows 1000000

Reference and current each have ``--rows`` rows: 20 numeric columns (4 shifted) and 5
categorical ones (1 shifted). Each variant runs in its own process (Linux: memory is read
from /proc/self/status): it imports its libraries (RSS = "libraries"), makes the data (RSS
growth = "data"), resets the peak, runs, and reports the peak RSS of the run ("peak") and its
growth over libraries + data ("computation"). The variants:

evidently  Report([DataDriftPreset()]).run(current, reference), types inferred by Evidently
loop       a plain loop over the columns with the same statistics Evidently picks at this size
           (scipy's wasserstein_distance / reference std; Jensen-Shannon of value shares)
cold       mlops_core.evidence.drift.compute_drift with an empty reference cache: fingerprint,
           preparation of the reference and the comparison
warm       compute_drift on a PreparedReference (median of --repeats windows), and on the
           reference DataFrame again (a cache hit, which still fingerprints the data)
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NUMERIC = 20
CATEGORICAL = 5
SHIFTED = ["num_00", "num_05", "num_10", "num_15", "cat_0"]
VARIANTS = ("evidently", "loop", "cold", "warm")
# Imported before the data is made, so that "above data" is what the computation itself costs.
IMPORTS = {
    "evidently": ["evidently", "evidently.presets"],
    "loop": ["scipy.stats", "scipy.spatial.distance"],
    "cold": ["mlops_core.evidence.drift"],
    "warm": ["mlops_core.evidence.drift"],
}
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], dtype=object)


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        name = f"num_{i:02d}"
        shift = 0.5 if shifted and name in SHIFTED else 0.0
        if i % 4 == 0:
            values = rng.normal(shift, 1.0, rows)
        elif i % 4 == 1:
            values = rng.lognormal(shift, 0.6, rows)
        elif i % 4 == 2:
            values = rng.exponential(1.0 + shift, rows)
        else:  # integers with many values: numeric for Evidently
            values = rng.integers(0, 1_000, rows) + int(shift * 300)
        columns[name] = values
    for i in range(CATEGORICAL):
        name = f"cat_{i}"
        shares = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
        if shifted and name in SHIFTED:
            shares = shares[::-1]
        # Indexing an object array shares six string objects, as data read from disk
        # with repeated values does after interning.
        columns[name] = CATEGORIES[rng.choice(len(CATEGORIES), rows, p=shares)]
    return pd.DataFrame(columns)


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=DataDefinition()),
        Dataset.from_pandas(reference, data_definition=DataDefinition()),
    )
    return sorted(
        test["metric_config"]["params"]["column"]
        for test in snapshot.dict()["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
        and test["status"] == "FAIL"
    )


def run_loop(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    from scipy import stats
    from scipy.spatial import distance

    drifted = []
    for name in reference.columns:
        ref, cur = reference[name].dropna(), current[name].dropna()
        if pd.api.types.is_numeric_dtype(ref):
            score = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        else:
            counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
            shares = counts / counts.sum()
            score = distance.jensenshannon(shares.iloc[:, 0], shares.iloc[:, 1])
        if score >= 0.1:
            drifted.append(name)
    return sorted(drifted)


def run_panel(
    reference: pd.DataFrame, current: pd.DataFrame, repeats: int, warm: bool
) -> tuple[list[str], dict[str, float]]:
    from mlops_core.evidence.drift import clear_reference_cache, compute_drift, prepare_reference

    clear_reference_cache()
    if not warm:
        return sorted(compute_drift(reference, current).drifted_columns), {}
    prepared = prepare_reference(reference)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = compute_drift(prepared, current)
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    compute_drift(reference, current)  # a cache hit: fingerprint, then the comparison
    extra = {
        "seconds_prepared": statistics.median(timings),
        "seconds_cache_hit": time.perf_counter() - started,
    }
    return sorted(result.drifted_columns), extra


def memory_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak since the last reset) of this process, Linux only."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} is not in /proc/self/status")


def reset_peak() -> None:
    # Making the data has its own transient peak; the variants are compared from here on.
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def child(variant: str, rows: int, repeats: int) -> None:
    for module in IMPORTS[variant]:
        importlib.import_module(module)
    imports_rss = memory_mb("VmRSS")
    reference, current = make_frame(rows, 1, False), make_frame(rows, 2, True)
    gc.collect()
    data_rss = memory_mb("VmRSS")
    reset_peak()
    runners: dict[str, Callable[[], tuple[list[str], dict[str, float]]]] = {
        "evidently": lambda: (run_evidently(reference, current), {}),
        "loop": lambda: (run_loop(reference, current), {}),
        "cold": lambda: run_panel(reference, current, repeats, warm=False),
        "warm": lambda: run_panel(reference, current, repeats, warm=True),
    }
    started = time.perf_counter()
    drifted, extra = runners[variant]()
    seconds = time.perf_counter() - started
    report = {"seconds": seconds, **extra}
    if variant == "warm":
        report["seconds"] = extra["seconds_prepared"]
    report |= {
        "peak_rss_mb": memory_mb("VmHWM"),
        "imports_rss_mb": imports_rss,
        "data_rss_mb": data_rss,
        "drifted": drifted,
    }
    print(json.dumps(report))


def measure(variant: str, rows: int, repeats: int) -> dict:
    command = [sys.executable, __file__, "--rows", str(rows), "--repeats", str(repeats)]
    # A fixed mmap threshold stops glibc from raising it as big arrays are freed, so freed
    # arrays go back to the system instead of padding "data" and hiding the computation's peak.
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    output = subprocess.run(
        [*command, "--child", variant], check=True, capture_output=True, text=True, env=environment
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="warm windows to time")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.repeats)
        return

    results = {}
    for variant in args.variants.split(","):
        results[variant] = measure(variant, args.rows, args.repeats)
        print(f"{variant}: {json.dumps(results[variant])}", flush=True)

    print(f"\n{args.rows:,} rows per side, {NUMERIC + CATEGORICAL} columns")
    print(
        "| variant | seconds | peak RSS (MB) | libraries (MB) | data (MB) | computation (MB) "
        "| drifted columns |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for variant, result in results.items():
        print(
            f"| {variant} | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} "
            f"| {result['imports_rss_mb']:.0f} "
            f"| {result['data_rss_mb'] - result['imports_rss_mb']:.0f} "
            f"| {computation_mb(result):.0f} | {', '.join(result['drifted'])} |"
        )
    if "warm" in results:
        print(
            f"warm through the DataFrame (cache hit): {results['warm']['seconds_cache_hit']:.2f} s"
        )
    print_ratios(results)


def computation_mb(result: dict) -> float:
    """Peak RSS above what the libraries and the data already took."""
    return result["peak_rss_mb"] - result["data_rss_mb"]


def print_ratios(results: dict[str, dict]) -> None:
    def seconds(variant: str) -> float:
        return results[variant]["seconds"]

    if "evidently" in results:
        for panel in ("cold", "warm"):
            if panel in results:
                print(f"Evidently / panel {panel}: {seconds('evidently') / seconds(panel):.1f}x")
                ours, theirs = results[panel], results["evidently"]
                print(
                    f"peak RSS panel {panel} / Evidently: "
                    f"{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f} in all, "
                    f"{computation_mb(ours) / computation_mb(theirs):.2f} for the computation"
                )
    if "loop" in results:
        for panel in ("cold", "warm"):
            if panel in results:
                print(f"panel {panel} / plain loop: {seconds(panel) / seconds('loop'):.2f}")
    verdicts = {variant: tuple(result["drifted"]) for variant, result in results.items()}
    agree = "agree" if len(set(verdicts.values())) == 1 else "DIFFER"
    print(f"drifted columns {agree} across variants (shifted: {', '.join(SHIFTED)})")


if __name__ == "__main__":
    main()

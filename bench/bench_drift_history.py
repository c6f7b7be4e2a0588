"""Time the drift page with a history of 52 weekly windows against the raw MLflow search.

    .venv/bin/python bench/bench_drift_history.py [--weeks 52] [--repeats 7] [--store DIR]

The store is the demo (`run_demo(..., sweep_runs=3)`, about 45 s) in a temporary folder
(deleted at the end; `--store` keeps it in a folder of your choice), which
already holds one logged check per week of the 8 weeks of churn-predictor's inference log.
The benchmark then logs `--weeks` more checks into ``monitoring/churn-predictor`` with
`log_drift_check` itself, so every run has exactly the params, metrics, tags and artifacts a
logged check has: one run per week for the `--weeks` weeks ending with the newest demo week.
The last 8 are real checks of the 8 weeks with data (re-checks: the history keeps the latest
run of a window); the older weeks have no data of their own, so each reuses the real check of
one of the 4 drift-free demo weeks with its window moved. One Evidently report (2,000 rows
per side) serves as the artifact of every run: the history never reads artifacts.

Each scenario (the demo's 8 windows, then `--weeks` windows) times, repeat after repeat:

- raw: the MLflow calls the history needs, `MlflowClient.get_experiment_by_name` plus
  `MlflowClient.search_runs` of the monitoring experiment (one page of at most 500 runs);
- core: `drift_history(Registry, model)`, the core call the page makes (the same calls, the
  DataFrame and one row per window);
- page cold: AppTest of pages/drift.py (a viewer signed in, ?model=churn-predictor) on a new
  session with Streamlit's caches cleared, timed around the page's script; besides the
  history this computes the drift check of the latest window; process-wide state (MLflow's
  store, SQL engines, the drift engine's prepared references) stays as a running server
  keeps it, and the first render of the fresh process is reported on its own;
- page warm: the same session run again (a click or a reload within the 30 s cache TTL).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import mlflow
import streamlit as st
from mlflow import MlflowClient
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The page-script timer and the gc-guarded timing of the experiments page benchmark.
from bench_experiments_page import TIMER, page_wrapper, timed  # noqa: E402

from mlops_core.config import load_settings  # noqa: E402
from mlops_core.demo.scenario import run_demo  # noqa: E402
from mlops_core.evidence.monitoring import (  # noqa: E402
    DEMO_REPORT_SAMPLE,
    HISTORY_PAGE_SIZE,
    KIND_TAG,
    check_model_drift,
    drift_history,
    drift_report,
    log_drift_check,
    model_windows,
    monitoring_experiment,
)
from mlops_core.identity import Actor  # noqa: E402
from mlops_core.stores.registry import Registry  # noqa: E402

MODEL = "churn-predictor"
DEMO_WEEKS = 8
PAGE = str(ROOT / "pages" / "drift.py")
VIEWER = Actor(username="viewer", roles=frozenset({"viewer"}))
WRAPPER = page_wrapper(PAGE)
LABELS = {
    "raw": "raw MlflowClient get_experiment_by_name + search_runs",
    "core": "drift_history (what the page calls)",
    "cold_script": "page script, cold (new session, empty caches)",
    "warm_script": "page script, warm (rerun, cached reads)",
    "cold_wall": "AppTest run, cold (script + AppTest set-up)",
    "warm_wall": "AppTest run, warm",
}


def log_weeks(folder: Path, weeks: int) -> None:
    """`weeks` logged weekly checks of MODEL in the demo store in `folder` (see the docstring)."""
    # Loaded after the demo, so that the policy file it installed is picked up.
    settings = load_settings({"MLOPS_DATA_DIR": str(folder)})
    registry = Registry(settings.tracking_uri)
    checks = [
        check_model_drift(settings, registry, MODEL, window=window)
        for window in model_windows(settings, MODEL)
    ]
    report = drift_report(checks[0], DEMO_REPORT_SAMPLE)
    quiet = [check for check in checks if not check.result.drifted_columns]
    older = weeks - len(checks)
    first = checks[0].window_start - timedelta(weeks=older)
    for week in range(older):
        start = first + timedelta(weeks=week)
        moved = replace(
            quiet[week % len(quiet)], window_start=start, window_end=start + timedelta(weeks=1)
        )
        log_drift_check(settings, registry, moved, report)
    for check in checks:
        log_drift_check(settings, registry, check, report)


def new_visit() -> AppTest:
    """A new visitor's session on the drift page, signed in as a viewer."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_string(WRAPPER, default_timeout=120)
    at.session_state["actor"] = VIEWER
    at.query_params["model"] = MODEL
    return at


def render(at: AppTest, windows: int) -> tuple[float, float]:
    """Seconds of the AppTest run and of the page script in it; checks what it showed."""
    wall, _ = timed(at.run)
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the page failed: {problems}")
    captions = [c.value for c in at.caption]
    if not any(c.startswith(f"{windows} logged windows") for c in captions):
        raise SystemExit(f"the page did not show {windows} windows: {captions}")
    return wall, TIMER.seconds[-1]


def measure(uri: str, windows: int, repeats: int) -> dict[str, list[float]]:
    client = MlflowClient(uri)
    core = Registry(uri)

    def raw() -> int:
        experiment = client.get_experiment_by_name(monitoring_experiment(MODEL))
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{KIND_TAG}` = 'drift'",
            max_results=HISTORY_PAGE_SIZE,
        )
        return len(runs)

    figures: dict[str, list[float]] = {name: [] for name in LABELS}
    for _ in range(repeats):
        seconds, _ = timed(raw)
        figures["raw"].append(seconds)
        seconds, history = timed(lambda: drift_history(core, MODEL))
        assert len(history) == windows, len(history)
        figures["core"].append(seconds)
        at = new_visit()
        for kind in ("cold", "warm"):
            wall, script = render(at, windows)
            figures[f"{kind}_wall"].append(wall)
            figures[f"{kind}_script"].append(script)
    return figures


def report(title: str, figures: dict[str, list[float]]) -> dict[str, float]:
    median = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{title}; medians in seconds [every repeat]:")
    for name, label in LABELS.items():
        values = ", ".join(f"{v:.3f}" for v in figures[name])
        print(f"  {label:<54} {median[name]:.3f}  [{values}]")
    print("  ratios to the raw call (medians):")
    for name in ("core", "cold_script", "warm_script", "warm_wall"):
        print(f"    {LABELS[name]:<52} {median[name] / median['raw']:.2f}")
    return median


def run(store: Path, weeks: int, repeats: int) -> None:
    os.environ["MLOPS_DATA_DIR"] = str(store)
    for name in ("MLFLOW_TRACKING_URI", "MLOPS_POLICY_FILE", "MLOPS_ARTIFACT_ROOT"):
        os.environ.pop(name, None)
    # The demo downloads every version's artifacts; a progress bar per file buries the figures.
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    print(
        f"python {platform.python_version()}, mlflow {mlflow.__version__}, "
        f"streamlit {st.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{repeats} repeats, store {store}"
    )

    seconds, _ = timed(lambda: run_demo(load_settings(), sweep_runs=3))
    print(f"demo store built in {seconds:.0f} s")
    # The first render of a fresh process also opens MLflow's store and imports the page's
    # modules; a running server pays that once, not per visit.
    wall, script = render(new_visit(), DEMO_WEEKS)
    print(f"first render in a fresh process (once): page script {script:.3f}, AppTest {wall:.3f}")
    demo = report(f"demo history, {DEMO_WEEKS} windows", measure(uri, DEMO_WEEKS, repeats))

    seconds, _ = timed(lambda: log_weeks(store, weeks))
    print(f"{weeks} weekly checks logged in {seconds:.0f} s")
    full = report(f"{weeks} windows", measure(uri, weeks, repeats))
    print(f"  cost of the longer history (medians, difference to {DEMO_WEEKS} windows):")
    for name in ("raw", "core", "cold_script", "warm_script"):
        print(f"    {LABELS[name]:<52} {full[name] - demo[name]:+.3f}")
    verdict = "meets" if full["warm_wall"] < 2 else "misses"
    print(f"warm render {full['warm_wall']:.3f} s {verdict} the 2 s target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--store", type=Path, help="an empty folder, kept (default: a temp one)")
    args = parser.parse_args()
    if args.weeks < DEMO_WEEKS:
        parser.error(f"--weeks must be at least the demo's {DEMO_WEEKS} weeks of data")
    if args.store is not None:
        run(args.store, args.weeks, args.repeats)
        return
    with tempfile.TemporaryDirectory(prefix="mlops-bench-drift-history-") as folder:
        run(Path(folder), args.weeks, args.repeats)


if __name__ == "__main__":
    main()

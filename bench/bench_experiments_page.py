"""Time the experiments page's first page of runs against a raw MlflowClient.search_runs.

    .venv/bin/python bench/bench_experiments_page.py [--runs 10000] [--page-size 100]
        [--repeats 5] [--store /tmp/mlops-bench-experiments]

The store (one experiment of --runs runs with 20 params and 20 metrics each, on the embedded
SQLite tracking store) is generated once with `MlflowClient.log_batch` and reused by later
invocations. In one process, each repeat times:

- raw: `MlflowClient.search_runs(max_results=page_size)` for the page the panel shows first;
- core: `Registry.search_runs`, the call the page makes, with its DataFrame conversion;
- page cold: AppTest of pages/experiments.py with the experiment preselected in the query
  string, on a new session with Streamlit's caches cleared (a new visitor);
- page warm: the same session run again (a rerun: a click or the refresh of the page).

Modules are imported and the SQLite file is in the OS page cache before the first repeat
(one untimed warm-up), as in a panel server that is already running.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import mlflow
import streamlit as st
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_core.evidence.comparison import order_by_clause  # noqa: E402
from mlops_core.stores.registry import Registry  # noqa: E402

EXPERIMENT = "bench/10k-runs"
PAGE = str(ROOT / "pages" / "experiments.py")
N_PARAMS = 20
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy", "log_loss", "mae", "rmse"] + [
    f"metric_{i:02d}" for i in range(12)
]
MODELS = ["logistic_regression", "random_forest", "gradient_boosting", "svm"]


def generate(store: Path, runs: int) -> str:
    """The benchmark experiment in `store`, created unless a complete one is already there."""
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        if (store / f"complete-{runs}").exists():
            return found.experiment_id
        raise SystemExit(f"{store} holds another or an incomplete store; delete it and rerun.")
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=str(store / "art"))
    started = time.perf_counter()
    for i in range(runs):
        run = client.create_run(experiment_id, run_name=f"run-{i:05d}", tags={"team": "bench"})
        now = int(time.time() * 1000)
        params = [Param("model", MODELS[i % len(MODELS)])]
        params += [Param(f"param_{j:02d}", str((i * (j + 3)) % 97)) for j in range(N_PARAMS - 1)]
        metrics = [
            Metric(name, ((i * 7919 + j * 104729) % 10007) / 10007, now, 0)
            for j, name in enumerate(METRICS)
        ]
        client.log_batch(
            run.info.run_id, metrics=metrics, params=params, tags=[RunTag("i", str(i))]
        )
        client.set_terminated(run.info.run_id)
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} runs logged in {time.perf_counter() - started:.0f} s", flush=True)
    (store / f"complete-{runs}").touch()
    return experiment_id


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    # A collection pending from earlier work would land in whichever call runs next.
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# The page runs inside this wrapper, which records how long the page's own script takes,
# without AppTest's per-session set-up (it scans installed packages for components) and
# its polling for the script's end.
TIMER = types.ModuleType("bench_page_timer")
TIMER.seconds = []
sys.modules[TIMER.__name__] = TIMER


def page_wrapper(page: str) -> str:
    """An AppTest script that runs `page` and records how long its own code took."""
    return f"""
import time
import bench_page_timer
started = time.perf_counter()
try:
    exec(compile(open({page!r}).read(), {page!r}, "exec"), {{"__name__": "__main__"}})
finally:
    bench_page_timer.seconds.append(time.perf_counter() - started)
"""


WRAPPER = page_wrapper(PAGE)


SCENARIOS = {
    # name: (the page's query string beyond the experiment, MLflow's order_by)
    "first page (default order: newest first)": ({}, None),
    "first page sorted by a metric": (
        {"sort": "metrics.roc_auc"},
        [order_by_clause("metrics.roc_auc", descending=True)],
    ),
}
LABELS = {
    "raw": "raw MlflowClient.search_runs",
    "core": "Registry.search_runs (what the page calls)",
    "cold_script": "page script, cold (new session, empty caches)",
    "warm_script": "page script, warm (rerun, cached reads)",
    "cold_wall": "AppTest run, cold (script + AppTest set-up)",
    "warm_wall": "AppTest run, warm",
    "floor": "AppTest run of a one-line page (harness floor)",
}
FLOOR_PAGE = "import streamlit as st\nst.title('Experiments')\n"


def new_visit(page_size: int, query: dict[str, str]) -> AppTest:
    """A new visitor's session on the experiments page with the experiment preselected."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_string(WRAPPER, default_timeout=120)
    at.query_params.update({"exp": EXPERIMENT, "size": str(page_size), **query})
    return at


def render(at: AppTest, page_size: int) -> tuple[float, float]:
    """Seconds of the AppTest run and of the page script in it; checks what it showed."""
    wall, _ = timed(at.run)
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the page failed: {problems}")
    shown = len(at.dataframe[0].value)
    if shown != page_size:
        raise SystemExit(f"the page showed {shown} runs instead of {page_size}")
    return wall, TIMER.seconds[-1]


def measure(
    uri: str, experiment_id: str, page_size: int, repeats: int, query: dict, order_by: list | None
) -> dict[str, list[float]]:
    client = MlflowClient(uri)
    core = Registry(uri)
    figures: dict[str, list[float]] = {name: [] for name in LABELS}
    for _ in range(repeats):
        seconds, page = timed(
            lambda: client.search_runs([experiment_id], max_results=page_size, order_by=order_by)
        )
        assert len(page) == page_size
        figures["raw"].append(seconds)
        seconds, _ = timed(
            lambda: core.search_runs([experiment_id], order_by=order_by, page_size=page_size)
        )
        figures["core"].append(seconds)
        at = new_visit(page_size, query)
        for kind in ("cold", "warm"):
            wall, script = render(at, page_size)
            figures[f"{kind}_wall"].append(wall)
            figures[f"{kind}_script"].append(script)
        figures["floor"].append(timed(AppTest.from_string(FLOOR_PAGE).run)[0])
    return figures


def report(title: str, figures: dict[str, list[float]]) -> None:
    median = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{title}; medians in seconds [every repeat]:")
    for name, label in LABELS.items():
        values = ", ".join(f"{v:.3f}" for v in figures[name])
        print(f"  {label:<48} {median[name]:.3f}  [{values}]")
    print("  ratios to the raw call (medians):")
    for name in ("core", "cold_script", "warm_script", "cold_wall"):
        print(f"    {LABELS[name]:<46} {median[name] / median['raw']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--store", type=Path, default=Path("/tmp/mlops-bench-experiments"))
    args = parser.parse_args()
    os.environ["MLOPS_DATA_DIR"] = str(args.store)
    for name in ("MLFLOW_TRACKING_URI", "MLOPS_POLICY_FILE"):
        os.environ.pop(name, None)

    seconds, experiment_id = timed(lambda: generate(args.store, args.runs))
    print(f"store: {args.store} ({args.runs} runs; ready in {seconds:.0f} s)")
    print(
        f"python {platform.python_version()}, mlflow {mlflow.__version__}, "
        f"streamlit {st.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"page size {args.page_size}, {args.repeats} repeats"
    )
    uri = f"sqlite:///{args.store / 'mlflow.db'}"
    # The very first render of a fresh process also opens MLflow's store (engine, schema
    # check) and imports the page's modules; a running server pays that once, not per visit.
    wall, script = render(new_visit(args.page_size, {}), args.page_size)
    print(f"first render in a fresh process (once): page script {script:.3f}, AppTest {wall:.3f}")
    for title, (query, order_by) in SCENARIOS.items():
        figures = measure(uri, experiment_id, args.page_size, args.repeats, query, order_by)
        report(title, figures)


if __name__ == "__main__":
    main()

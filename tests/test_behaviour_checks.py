"""Behaviour checks on real MLflow models: sandboxed measurements, stored evidence, gates.

One store of our own (SQLite, local artifacts) holds a registered version of each model:
stock scikit-learn models (one imputes missing values, one refuses them) and custom
pyfuncs from tests/behaviour_models.py that are noisy, slow, hungry or stuck. Each model is
checked once per module (fewer latency calls and throughput rows than the defaults, to
keep the sandboxes quick); the tests read those reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlops_core.config import Settings
from mlops_core.errors import NotFound, PermissionDenied
from mlops_core.evidence.behaviour.report import CheckReport, Progress
from mlops_core.evidence.behaviour.run import run_checks
from mlops_core.evidence.behaviour.store import log_check_report, stored_check_report
from mlops_core.governance.gates import FAILED, NOT_EVALUATED, PASSED, evaluate_gates
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, VIEWER
from tests.conftest import settings_for

TESTS = Path(__file__).resolve().parent
FEATURES = ["age", "income", "tenure"]
QUICK = {"latency_calls": 40, "throughput_rows": 2000}
POLICY = """
[defaults]
target = "champion"

[models.imputing.checks]
max_latency_p99_ms = 2000
require_deterministic = true
missing_values = "predict"
min_throughput_rows_per_s = 10
max_model_size_mb = 50

[models.plain.checks]
missing_values = "predict"

[models.noisy.checks]
require_deterministic = true

[models.slow.checks]
max_latency_p99_ms = 5

[models.stuck.checks]
max_latency_p99_ms = 1000
"""


def training_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 300),
            "income": rng.normal(50_000, 12_000, 300),
            "tenure": rng.uniform(0, 20, 300),
        }
    )
    return frame, (frame.tenure + rng.normal(0, 3, 300) > 10).astype(int).to_numpy()


def _log_evaluation(frame: pd.DataFrame, labels: np.ndarray) -> None:
    evaluation = frame.assign(label=labels, score=0.5, prediction=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "evaluation.parquet"
        evaluation.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "evaluation")


def _register(name: str, log) -> None:  # noqa: ANN001
    frame, labels = training_frame()
    with mlflow.start_run(run_name=name):
        _log_evaluation(frame, labels)
        info = log(frame, labels)
    mlflow.register_model(info.model_uri, name)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("checks-store")
    (data_dir / "policy.toml").write_text(POLICY, encoding="utf-8")
    settings = settings_for(data_dir)
    db.upgrade(settings.db_url)
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import behaviour_models as bm  # noqa: PLC0415  (top-level, as the sandbox imports it)

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    mlflow.set_experiment("behaviour")
    code = [str(TESTS / "behaviour_models.py")]
    try:

        def sklearn_model(model):  # noqa: ANN001, ANN202
            def log(frame, labels):  # noqa: ANN001, ANN202
                model.fit(frame, labels)
                return mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(frame, model.predict_proba(frame)[:, 1]),
                    input_example=frame.head(3),
                    skops_trusted_types=["numpy.dtype"],
                )

            return log

        def custom(python_model, example: bool = True):  # noqa: ANN001, ANN202
            def log(frame, labels):  # noqa: ANN001, ANN202
                return mlflow.pyfunc.log_model(
                    name="model",
                    python_model=python_model,
                    code_paths=code,
                    signature=infer_signature(frame, np.zeros(len(frame))),
                    input_example=frame.head(3) if example else None,
                )

            return log

        _register(
            "imputing",
            sklearn_model(make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))),
        )
        _register("plain", sklearn_model(LogisticRegression(max_iter=500)))
        _register("noisy", custom(bm.NoisyModel()))
        _register("slow", custom(bm.SlowModel(0.02)))
        # No input example for these two: logging one would run them here.
        _register("hungry", custom(bm.HungryModel(1500), example=False))
        _register("stuck", custom(bm.StuckModel(), example=False))
    finally:
        mlflow.set_tracking_uri(previous)
    yield settings


@pytest.fixture(scope="module")
def reports(store: Settings) -> dict[str, CheckReport]:
    return {
        "imputing": run_checks(store, "imputing", "1", **QUICK),
        "plain": run_checks(store, "plain", "1", **QUICK),
        "noisy": run_checks(store, "noisy", "1", **QUICK),
        "slow": run_checks(store, "slow", "1", **QUICK),
        "hungry": run_checks(store, "hungry", "1", memory_mb=1024, **QUICK),
        "stuck": run_checks(store, "stuck", "1", timeout_s=8, **QUICK),
    }


def statuses(report: CheckReport) -> dict[str, str]:
    return {o.name: o.status for o in report.outcomes}


# --- measurements ---------------------------------------------------------------------------


def test_a_pipeline_that_imputes_passes_everything(reports: dict[str, CheckReport]) -> None:
    report = reports["imputing"]
    assert report.completed, report.failure
    assert report.input_source == "the version's input example" and report.rows_used == 3
    assert report.deterministic is True and report.missing_values == "predict"
    found = statuses(report)
    assert found["batch_prediction"] == found["determinism"] == "passed"
    assert found["missing_values.all_nan"] == found["missing_values.income"] == "passed"
    # The signature enforces types and inputs; an extra column is ignored.
    assert found["schema.wrong_type"] == "passed"
    assert found["schema.missing_column"] == "passed"
    assert found["schema.extra_column"] == "passed"
    assert found["requirements"] in ("passed", "warning")
    assert report.latency is not None and report.latency.calls == QUICK["latency_calls"]
    assert len(report.latency.samples_ms) == QUICK["latency_calls"]
    assert 0 < report.latency.p50_ms <= report.latency.p95_ms <= report.latency.p99_ms
    assert report.throughput_rows == QUICK["throughput_rows"]
    assert report.throughput_rows_per_s and report.throughput_rows_per_s > 0
    assert report.model_size_mb and 0 < report.model_size_mb < 5
    assert report.peak_load_memory_mb is not None
    assert set(report.metrics()) >= {
        "checks.latency_p99_ms",
        "checks.deterministic",
        "checks.throughput_rows_per_s",
        "checks.model_size_mb",
        "checks.missing_values_ok",
    }


def test_a_model_that_refuses_missing_values_says_so_clearly(
    reports: dict[str, CheckReport],
) -> None:
    report = reports["plain"]
    assert report.completed and report.missing_values == "clear_error"
    outcome = report.outcome("missing_values.all_nan")
    assert outcome is not None and outcome.status == "clear_error"
    assert "NaN" in outcome.detail


def test_noise_is_not_deterministic(reports: dict[str, CheckReport]) -> None:
    report = reports["noisy"]
    assert report.completed and report.deterministic is False
    assert statuses(report)["determinism"] == "failed"
    assert "differ in 3 answer(s)" in report.outcome("determinism").detail


def test_slow_model_latency(reports: dict[str, CheckReport]) -> None:
    report = reports["slow"]
    assert report.latency is not None and report.latency.p50_ms >= 20
    assert report.throughput_rows_per_s is not None


def test_memory_and_time_limits_end_in_a_report(reports: dict[str, CheckReport]) -> None:
    hungry = reports["hungry"]
    assert hungry.failure.startswith("exceeded the memory limit of 1024 MB")
    assert hungry.latency is None and hungry.limits.memory_mb == 1024
    stuck = reports["stuck"]
    assert stuck.failure == "timed out after 8 s"
    # What the probe measured before it hung is kept.
    assert stuck.input_source.startswith("evaluation set: ") and stuck.rows_used == 300
    assert stuck.model_size_mb is not None and stuck.latency is None
    assert stuck.metrics()["checks.model_size_mb"] == stuck.model_size_mb


def test_progress_is_reported_as_the_probe_goes(store: Settings) -> None:
    steps: list[Progress] = []
    report = run_checks(store, "imputing", "1", on_progress=steps.append, **QUICK)
    assert report.completed
    names = [p.step for p in steps]
    assert names[0] == "load" and names[-1] == "done"
    assert {"batch_prediction", "missing_values", "latency", "throughput"} <= set(names)


def test_unknown_model_or_version_is_an_error(store: Settings) -> None:
    with pytest.raises(NotFound):
        run_checks(store, "nobody", "1")
    with pytest.raises(NotFound):
        run_checks(store, "imputing", "9")


def test_the_caller_never_imports_the_model_code(store: Settings) -> None:
    """The model's flavor and the custom pyfunc's module load in the sandbox only."""
    program = f"""
import sys
sys.path.insert(0, {str(TESTS.parent)!r})
from mlops_core.config import load_settings
from mlops_core.evidence.behaviour.run import run_checks
import mlops_core.governance.gates, mlops_core.evidence.behaviour.store
settings = load_settings({{"MLOPS_DATA_DIR": {str(store.data_dir)!r}}})
before = set(sys.modules)
report = run_checks(settings, "noisy", "1", latency_calls=5, throughput_rows=100)
assert report.completed, report.failure
new = sorted(set(sys.modules) - before)
print(",".join(new))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip().split(",")
    forbidden = ("behaviour_models", "mlflow.pyfunc", "sklearn", "cloudpickle")
    assert not [m for m in new if m.startswith(forbidden)], new


# --- stored evidence and gates --------------------------------------------------------------


def _gates(settings: Settings, model: str) -> dict[str, tuple[str, str]]:
    report = evaluate_gates(settings, Registry(settings.tracking_uri), model, "1")
    return {r.name: (r.status, r.reason) for r in report.results if r.kind == "checks"}


def test_logging_needs_a_writer_and_stores_artifact_metrics_and_tag(
    store: Settings, reports: dict[str, CheckReport]
) -> None:
    with pytest.raises(PermissionDenied):
        log_check_report(store, reports["imputing"], VIEWER)
    log_check_report(store, reports["imputing"], APPROVER)
    registry = Registry(store.tracking_uri)
    run = registry.get_run(registry.get_version("imputing", "1").run_id)
    assert run.tags["mlops.checks.status"] == "completed"
    assert run.metrics["checks.deterministic"] == 1.0
    stored = stored_check_report(store, "imputing", "1")
    assert stored.report == reports["imputing"]
    assert stored.source.startswith("stored evidence: checks/report.json of run ")
    gates = _gates(store, "imputing")
    assert set(gates) == {
        "checks latency_p99_ms",
        "checks deterministic",
        "checks missing_values",
        "checks throughput_rows_per_s",
        "checks model_size_mb",
    }
    assert {status for status, _ in gates.values()} == {PASSED}


def test_gates_fail_on_what_the_checks_measured(
    store: Settings, reports: dict[str, CheckReport]
) -> None:
    for model in ("plain", "noisy", "slow"):
        log_check_report(store, reports[model], APPROVER)
    assert _gates(store, "plain")["checks missing_values"][0] == FAILED
    assert _gates(store, "noisy")["checks deterministic"][0] == FAILED
    status, reason = _gates(store, "slow")["checks latency_p99_ms"]
    assert status == FAILED and "at most 5 ms" in reason


def test_gates_are_not_evaluated_without_usable_evidence(
    store: Settings, reports: dict[str, CheckReport]
) -> None:
    # A sandbox that timed out blocks the gate.
    log_check_report(store, reports["stuck"], APPROVER)
    status, reason = _gates(store, "stuck")["checks latency_p99_ms"]
    assert status == NOT_EVALUATED and "timed out after 8 s" in reason
    # Nothing stored (hungry's policy gates nothing, so use the slow model's report
    # overwritten by other bytes: replaced evidence is never used).
    registry = Registry(store.tracking_uri)
    run_id = registry.get_version("slow", "1").run_id
    good = json.loads(reports["slow"].to_json())
    good["latency"]["p99_ms"] = 1.0
    registry.client.log_text(run_id, json.dumps(good), "checks/report.json")
    stored = stored_check_report(store, "slow", "1")
    assert stored.report is None and "is not the evidence the panel stored" in stored.why_not
    status, reason = _gates(store, "slow")["checks latency_p99_ms"]
    assert status == NOT_EVALUATED and "not the evidence the panel stored" in reason


def test_a_version_without_checks_is_not_evaluated(tmp_path: Path, store: Settings) -> None:
    missing = stored_check_report(store, "hungry", "1")
    assert missing.report is None and missing.why_not.startswith("no behaviour checks")
    policy = store.data_dir / "policy.toml"
    original = policy.read_text(encoding="utf-8")
    try:
        policy.write_text(original + "\n[models.hungry.checks]\nmax_model_size_mb = 1\n")
        status, reason = _gates(store, "hungry")["checks model_size_mb"]
        assert status == NOT_EVALUATED and "check --log" in reason
    finally:
        policy.write_text(original)

"""Behaviour checks on real MLflow models: sandboxed measurements, stored evidence, gates.

One store of our own (SQLite, local artifacts) holds a registered version of each model:
stock scikit-learn models (one imputes missing values, one refuses them) and custom
pyfuncs from tests/behaviour_models.py that are noisy, slow, hungry or stuck. Each model is
checked once per module (fewer latency calls and throughput rows than the defaults, to
keep the sandboxes quick); the tests read those reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.errors import NotFound, PermissionDenied
from mlops_core.evidence.behaviour.probe import requirement_warnings
from mlops_core.evidence.behaviour.report import CheckReport, Progress
from mlops_core.evidence.behaviour.run import run_checks
from mlops_core.evidence.behaviour.store import log_check_report, stored_check_report
from mlops_core.governance.gates import FAILED, NOT_EVALUATED, PASSED, evaluate_gates
from mlops_core.people.auth import authenticate
from mlops_core.people.tokens import create_token
from mlops_core.people.user_admin import manage_user
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


def _register(experiment: str, name: str, log) -> None:  # noqa: ANN001
    frame, labels = training_frame()
    mlflow.MlflowClient().create_registered_model(name)
    with mlflow.start_run(experiment_id=experiment, run_name=name):
        _log_evaluation(frame, labels)
        info = log(frame, labels)
    mlflow.MlflowClient().create_model_version(name, info.model_uri, info.run_id)


# Stated, so that logging does not run each model in a subprocess to infer them.
REQUIREMENTS = ["mlflow", "scikit-learn", "pandas"]


def _sklearn(model, requirements: list[str] = REQUIREMENTS):  # noqa: ANN001, ANN202
    def log(frame: pd.DataFrame, labels: np.ndarray):  # noqa: ANN202
        model.fit(frame, labels)
        return mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict_proba(frame)[:, 1]),
            input_example=frame.head(3),
            skops_trusted_types=["numpy.dtype"],
            pip_requirements=requirements,
        )

    return log


def _custom(python_model, example: bool = True):  # noqa: ANN001, ANN202
    def log(frame: pd.DataFrame, labels: np.ndarray):  # noqa: ANN202
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            code_paths=[str(TESTS / "behaviour_models.py")],
            signature=infer_signature(frame, np.zeros(len(frame))),
            input_example=frame.head(3) if example else None,
            pip_requirements=REQUIREMENTS,
        )

    return log


def _log_models(settings: Settings, bm) -> None:  # noqa: ANN001
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.MlflowClient().create_experiment(
        "behaviour", artifact_location=f"{settings.artifact_root}/behaviour"
    )
    pipeline = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))
    _register(experiment, "imputing", _sklearn(pipeline))
    # Logged with a scikit-learn nobody has: a requirements warning.
    plain = LogisticRegression(max_iter=500)
    _register(experiment, "plain", _sklearn(plain, ["mlflow", "scikit-learn==0.20.0"]))
    _register(experiment, "noisy", _custom(bm.NoisyModel()))
    _register(experiment, "slow", _custom(bm.SlowModel(0.02)))
    # No input example for these two: logging one would run them here.
    _register(experiment, "hungry", _custom(bm.HungryModel(1500), example=False))
    _register(experiment, "stuck", _custom(bm.StuckModel(), example=False))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("checks-store")
    (data_dir / "policy.toml").write_text(POLICY, encoding="utf-8")
    settings = settings_for(data_dir)
    db.upgrade(settings.db_url)
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import behaviour_models as bm  # noqa: PLC0415  (top-level, as the sandbox imports it)

    # The fluent API keeps its tracking URI in MLFLOW_TRACKING_URI too: put both back.
    variable = os.environ.get("MLFLOW_TRACKING_URI")
    previous = mlflow.get_tracking_uri()
    try:
        _log_models(settings, bm)
    finally:
        mlflow.set_tracking_uri(previous)
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable
    yield settings


PROGRESS: list[Progress] = []


@pytest.fixture(scope="module")
def reports(store: Settings) -> dict[str, CheckReport]:
    """Every model checked once, side by side: the sandboxes are separate processes."""
    options = {
        "imputing": {"on_progress": PROGRESS.append},
        "hungry": {"memory_mb": 1024},
        "stuck": {"timeout_s": 12},
    }
    names = ["imputing", "plain", "noisy", "slow", "hungry", "stuck"]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {
            name: pool.submit(run_checks, store, name, "1", **QUICK, **options.get(name, {}))
            for name in names
        }
        return {name: future.result() for name, future in futures.items()}


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
    assert found["requirements"] == "passed" and report.requirement_warnings == ()
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
    assert report.outcome("requirements").status == "warning"
    assert report.requirement_warnings[0].startswith("scikit-learn==0.20.0 declared")


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
    assert stuck.failure == "timed out after 12 s"
    # What the probe measured before it hung is kept.
    assert stuck.input_source.startswith("evaluation set: ") and stuck.rows_used == 300
    assert stuck.model_size_mb is not None and stuck.latency is None
    assert stuck.metrics()["checks.model_size_mb"] == stuck.model_size_mb


def test_progress_is_reported_as_the_probe_goes(reports: dict[str, CheckReport]) -> None:
    assert reports["imputing"].completed
    names = [p.step for p in PROGRESS]
    assert names[0] == "load" and names[-1] == "done"
    assert {"batch_prediction", "missing_values", "latency", "throughput"} <= set(names)
    latency = [p for p in PROGRESS if p.step == "latency"]
    assert latency[-1].done == latency[-1].total == QUICK["latency_calls"]


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
    assert status == NOT_EVALUATED and "timed out after 12 s" in reason
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


def test_external_reports_count_only_when_the_policy_accepts_them(
    store: Settings, reports: dict[str, CheckReport]
) -> None:
    """A report CI logged with MLflow's own client has no digest in the audit log."""
    registry = Registry(store.tracking_uri)
    run_id = registry.get_version("hungry", "1").run_id
    registry.client.log_text(run_id, reports["hungry"].to_json().decode(), "checks/report.json")
    unrecorded = stored_check_report(store, "hungry", "1")
    assert unrecorded.report is None and "was not produced by the panel" in unrecorded.why_not
    policy = store.data_dir / "policy.toml"
    original = policy.read_text(encoding="utf-8")
    try:
        policy.write_text(
            original.replace("[defaults]", "[defaults]\naccept_external_evidence = true")
        )
        accepted = stored_check_report(store, "hungry", "1")
        assert accepted.report == reports["hungry"]
        assert accepted.source.startswith("external evidence (not produced by the panel)")
    finally:
        policy.write_text(original)


# --- requirements ---------------------------------------------------------------------------


def test_declared_requirements_are_compared_with_what_is_installed(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        f"mlflow=={mlflow.__version__}\nnumpy==0.0.1\nno-such-package-here==1.0\n"
        "pandas  # any version\n--index-url https://example.org\n",
        encoding="utf-8",
    )
    warnings = requirement_warnings(tmp_path)
    assert len(warnings) == 2
    assert warnings[0].startswith(f"numpy==0.0.1 declared, numpy {np.__version__} installed")
    assert warnings[1] == "no-such-package-here==1.0 is not installed"
    (tmp_path / "requirements.txt").unlink()
    (tmp_path / "conda.yaml").write_text(
        "dependencies:\n- python=3.11\n- pip:\n  - scikit-learn==0.1\n", encoding="utf-8"
    )
    assert requirement_warnings(tmp_path)[0].startswith("scikit-learn==0.1 declared")


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, store: Settings):
    """Run `check` in-process against the store: (exit code, stdout, stderr)."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(store.data_dir))
    monkeypatch.delenv("MLOPS_TOKEN", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_cli_prints_a_table_and_fails_on_a_failed_check(cli) -> None:  # noqa: ANN001
    code, out, err = cli("check", "--model", "noisy", "--version", "1")
    assert code == 1, err
    assert "determinism" in out and "FAILED: determinism" in out
    assert "latency p99" in out and "500 calls" in out  # the default number of calls
    assert "load: loading the model" in err


def test_the_cli_refuses_bad_input_with_exit_2(cli) -> None:  # noqa: ANN001
    code, _, err = cli("check", "--model", "nobody", "--version", "1")
    assert code == 2 and err.startswith("error: ")
    code, _, err = cli("check", "--model", "imputing", "--version", "1", "--timeout", "0")
    assert code == 2 and "--timeout" in err


def test_ci_checks_logs_and_gates_a_fresh_version(
    cli,  # noqa: ANN001
    store: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = cli("check", "--model", "imputing", "--version", "1", "--log")
    assert code == 2 and "changes state" in err  # no token: refused before the model runs
    manage_user(store, None, "ann", "long-enough-pw", ["approver"])
    ann = authenticate(store, "ann", "long-enough-pw")
    token = create_token(store, ann, "ci").secret
    code, out, err = cli(
        "check", "--model", "imputing", "--version", "1", "--log", "--json", "--as", "ann",
        "--timeout", "120",
    )  # fmt: skip
    assert code == 2 and "access token" in err
    monkeypatch.setenv("MLOPS_TOKEN", token)
    code, out, err = cli(
        "check", "--model", "imputing", "--version", "1", "--log", "--json", "--as", "ann"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "imputing" and data["latency"]["calls"] == 500
    assert data["throughput_rows"] == 10_000 and data["failure"] == ""
    stored = stored_check_report(store, "imputing", "1")
    assert stored.report is not None and json.loads(stored.report.to_json()) == data
    code, out, _ = cli("gate", "--model", "imputing", "--version", "1", "--json")
    gates = [g for g in json.loads(out)["results"] if g["kind"] == "checks"]
    assert code == 0 and len(gates) == 5 and {g["status"] for g in gates} == {PASSED}


def test_a_version_without_model_files_is_a_failed_report(store: Settings, tmp_path: Path) -> None:
    client = Registry(store.tracking_uri).client
    client.create_registered_model("ghost")
    client.create_model_version("ghost", (tmp_path / "gone").as_uri())
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "weights.bin").write_bytes(b"\0" * 10)
    client.create_model_version("ghost", (tmp_path / "not-a-model").as_uri())
    gone = run_checks(store, "ghost", "1")
    assert gone.failure.startswith("the model's files could not be downloaded")
    assert gone.latency is None and gone.outcomes == ()
    not_a_model = run_checks(store, "ghost", "2")
    assert not_a_model.failure.startswith("the version's files are not an MLflow model")

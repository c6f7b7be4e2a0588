"""`python -m mlops_core drift` as a CI job and a person use it: exit codes, JSON, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_core.commands import cli
from mlops_core.config import Settings
from mlops_core.evidence.monitoring import drift_history
from mlops_core.stores.registry import Registry
from tests.test_monitoring import copy_store
from tests.test_tokens import demo_token

COLUMN_FIELDS = {"column", "method", "score", "threshold", "drifted"}


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run the command in-process: (exit code, stdout, stderr)."""

    def invoke(settings: Settings, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("MLOPS_DATA_DIR", str(settings.data_dir))
        code = cli.main(["drift", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture(scope="module")
def files(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The churn champion's reference set as files, as is, drifted and spoiled."""
    registry = Registry(demo_settings.tracking_uri)
    run_id = registry.version_by_alias("churn-predictor").run_id
    local = registry.client.download_artifacts(run_id, "reference/reference.parquet")
    folder = tmp_path_factory.mktemp("drift-files")
    frame = pd.read_parquet(local)
    frame.to_parquet(folder / "reference.parquet", index=False)
    shifted = frame.assign(
        monthly_charges=frame.monthly_charges * 2,
        usage_gb=frame.usage_gb + 50,
        tenure_months=frame.tenure_months * 3,
        contract_type="two-year",
        region="north",
    )
    shifted.to_csv(folder / "drifted.csv", index=False)
    frame.sample(frac=0.5, random_state=1).to_csv(folder / "same.csv", index=False)
    frame.assign(monthly_charges="lots").to_csv(folder / "text.csv", index=False)
    frame.rename(columns=lambda name: f"x_{name}").to_csv(folder / "other.csv", index=False)
    frame.head(0).to_csv(folder / "empty.csv", index=False)
    (folder / "notes.txt").write_text("not a table\x00\x01")
    return {path.name: path for path in folder.iterdir()}


def test_two_files_without_drift_exit_0_with_json(run, demo_settings, files) -> None:
    code, out, err = run(
        demo_settings, "--reference", str(files["reference.parquet"]),
        "--current", str(files["same.csv"]), "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["drifted"] is False and summary["drift_share"] == 0
    assert summary["columns"] and all(set(c) >= COLUMN_FIELDS for c in summary["columns"])
    assert "mlflow_run_id" not in summary


def test_two_files_with_drift_exit_1_and_name_the_columns(run, demo_settings, files) -> None:
    code, out, err = run(
        demo_settings, "--reference", str(files["reference.parquet"]),
        "--current", str(files["drifted.csv"]),
    )  # fmt: skip
    assert code == 1, err
    assert "DRIFTED:" in out and "monthly_charges" in out
    assert out.index("monthly_charges") < out.index("num_products")


@pytest.mark.parametrize(
    ("current", "message"),
    [
        ("other.csv", "no column in common"),
        ("empty.csv", "no data rows"),
        ("notes.txt", "not a CSV or Parquet file"),
        ("missing.csv", "does not exist"),
    ],
)
def test_bad_files_exit_2_with_a_clear_message(run, demo_settings, files, current, message) -> None:
    path = files.get(current, files["reference.parquet"].parent / current)
    code, out, err = run(
        demo_settings, "--reference", str(files["reference.parquet"]), "--current", str(path)
    )
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_text_in_a_numeric_column_is_named(run, demo_settings, files) -> None:
    code, _, err = run(
        demo_settings, "--reference", str(files["reference.parquet"]),
        "--current", str(files["text.csv"]),
    )  # fmt: skip
    assert code == 2 and "monthly_charges" in err


def test_model_window_without_logging(run, demo_settings) -> None:
    code, out, err = run(
        demo_settings, "--model", "churn-predictor", "--window", "2000-01-01:2100-01-01",
        "--json", "--no-log", "--sample-size", "2000",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["reference_version"] == "1" and summary["max_drift_share"] == 0.5
    assert summary["n_current"] == 2000 and "sample of 2,000" in summary["current"]
    compared = {c["column"] for c in summary["columns"]}
    assert "score" not in compared and "timestamp" not in compared
    assert "mlflow_run_id" not in summary


def test_model_check_is_logged_to_mlflow(run, demo_settings, tmp_path, monkeypatch) -> None:
    store = copy_store(demo_settings, tmp_path)
    code, _, err = run(store, "--model", "churn-predictor", "--json")
    assert code == 2 and "Logging the check to MLflow (--no-log skips it) changes state" in err
    # A viewer may read drift but not write it to MLflow; a requester may.
    monkeypatch.setenv("MLOPS_TOKEN", demo_token(store, "viewer"))
    code, _, err = run(store, "--model", "churn-predictor", "--json")
    assert code == 2 and "needs the requester or approver role" in err
    assert drift_history(Registry(store.tracking_uri), "churn-predictor").empty
    monkeypatch.setenv("MLOPS_TOKEN", demo_token(store, "requester"))
    code, out, err = run(store, "--model", "churn-predictor", "--json")
    assert code == 0, err
    run_id = json.loads(out)["mlflow_run_id"]
    history = drift_history(Registry(store.tracking_uri), "churn-predictor")
    assert list(history["run_id"]) == [run_id]
    assert history["drift_share"].iloc[0] == pytest.approx(3 / 8)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope", "--no-log"], "nope"),
        (["--model", "churn-predictor", "--window", "soon"], "not START:END"),
        (["--model", "churn-predictor", "--window", "2026-02-01:2026-01-01"], "before the end"),
        (["--model", "churn-predictor", "--current", "x.csv"], "not both"),
        (["--reference", "x.csv"], "both --reference FILE and --current FILE"),
    ],
)
def test_bad_arguments_exit_2(run, demo_settings, args, message) -> None:
    code, _, err = run(demo_settings, *args)
    assert code == 2 and message in err, err


def test_model_drift_decides_with_the_policys_max_drift_share(
    run, demo_settings, tmp_path, monkeypatch
) -> None:
    # 3 of the 8 columns drift in the latest window: under Evidently's dataset share (50%)
    # that is no drift, but a policy allowing at most 20% fails its drift gate, and so must
    # the command a pipeline runs.
    assert demo_settings.policy_file is not None
    strict = tmp_path / "policy.toml"
    text = demo_settings.policy_file.read_text()
    strict.write_text(text.replace("max_drift_share = 0.5", "max_drift_share = 0.2"))
    monkeypatch.setenv("MLOPS_POLICY_FILE", str(strict))
    code, out, err = run(demo_settings, "--model", "churn-predictor", "--json", "--no-log")
    assert code == 1, err
    summary = json.loads(out)
    assert summary["drifted"] is True and summary["decision_threshold"] == 0.2
    assert summary["threshold_source"] == f"policy defaults.drift.max_drift_share in {strict}"
    code, out, _ = run(demo_settings, "--model", "churn-predictor", "--no-log")
    assert code == 1 and "DRIFTED: 3 of 8 columns drifted" in out
    assert "threshold 0.2 from policy defaults.drift.max_drift_share" in out


def test_two_files_say_the_default_threshold_decided(run, demo_settings, files) -> None:
    code, out, _ = run(
        demo_settings, "--reference", str(files["reference.parquet"]),
        "--current", str(files["same.csv"]),
    )  # fmt: skip
    assert code == 0 and "threshold 0.5 from the default" in out

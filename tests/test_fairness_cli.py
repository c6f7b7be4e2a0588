"""`python -m mlops_core fairness` as a CI job and a person use it: exit codes, JSON, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.demo.evidence import seed_fairness_evidence
from tests.apptest import APPROVER
from tests.test_cli import run_cli
from tests.test_fairness_evidence import evaluation_frame

GROUP_FIELDS = {"group", "count", "selection_rate", "tpr", "fpr", "precision", "accuracy"}


@pytest.fixture(scope="module")
def seeded(demo_settings: Settings) -> Settings:
    seed_fairness_evidence(demo_settings, APPROVER)
    return demo_settings


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, seeded: Settings):
    """Run the command in-process against the demo store: (exit code, stdout, stderr)."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(seeded.data_dir))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["fairness", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def files(seeded: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Churn v2's evaluation set as files, clean and spoiled in the ways people spoil them."""
    folder = tmp_path_factory.mktemp("fairness-files")
    frame = evaluation_frame(seeded, "churn-predictor", "2")
    frame.to_parquet(folder / "eval.parquet", index=False)
    frame.to_csv(folder / "eval.csv", index=False)
    frame.assign(gender=frame.gender.where(frame.index % 50 != 0)).to_csv(
        folder / "missing.csv", index=False
    )
    frame.assign(label=frame.label.where(frame.index != 0, 2)).to_csv(
        folder / "labels.csv", index=False
    )
    frame.assign(gender="F", prediction=0).to_csv(folder / "degenerate.csv", index=False)
    frame.assign(
        label=frame.label.map({0: -1, 1: 1}), prediction=frame.prediction.map({0: -1, 1: 1})
    ).to_csv(folder / "signed.csv", index=False)
    return {path.stem: path for path in folder.iterdir()}


def test_model_verdict_as_json_for_ci(seeded: Settings) -> None:
    result = run_cli(
        "fairness", "--model", "churn-predictor", "--version", "2", "--json",
        env={"MLOPS_DATA_DIR": str(seeded.data_dir)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] is False and data["version"] == "2"
    assert data["source"].startswith("stored evidence: fairness/report.json")
    gender = data["features"]["gender"]
    assert gender["demographic_parity_difference"] > 0.1
    assert {g["group"] for g in gender["groups"]} == {"F", "M"}
    assert set(gender["groups"][0]) >= GROUP_FIELDS


def test_fair_version_passes_in_text(cli) -> None:
    code, out, _ = cli("--model", "churn-predictor", "--version", "3")
    assert code == 0
    assert "gender: pass" in out and "(overall)" in out
    assert out.strip().splitlines()[-1].startswith("PASSED; closest to its threshold: gender")


def test_model_with_other_sensitive_features(cli) -> None:
    code, out, _ = cli(
        "--model", "churn-predictor", "--version", "champion", "--sensitive", "gender,age_band",
        "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert list(data["features"]) == ["gender", "age_band", "gender&age_band"]
    assert code == 1 and data["features"]["gender"]["passed"] is True
    assert "other settings" in data["source"]


@pytest.mark.parametrize(("limit", "expected"), [("0.2", 0), ("0.1", 1)])
def test_data_file_with_scores_and_own_thresholds(cli, files, limit: str, expected: int) -> None:
    code, out, _ = cli(
        "--data", str(files["eval"]), "--label", "label", "--score", "score",
        "--threshold", "0.5", "--sensitive", "gender",
        "--max", f"demographic_parity_difference={limit}", "--json",
    )  # fmt: skip
    assert code == expected
    assert json.loads(out)["config"]["max_disparity"] == {
        "demographic_parity_difference": float(limit)
    }


def test_data_file_takes_the_default_policy_thresholds(cli, files) -> None:
    code, out, _ = cli(
        "--data", str(files["eval"]), "--label", "label", "--pred", "prediction",
        "--sensitive", "gender", "--json",
    )  # fmt: skip
    assert code == 1
    assert json.loads(out)["config"]["max_disparity"] == {
        "demographic_parity_difference": 0.08,
        "equalized_odds_difference": 0.25,
    }


def test_missing_sensitive_values_are_a_group(cli, files) -> None:
    code, out, _ = cli(
        "--data", str(files["missing"]), "--label", "label", "--pred", "prediction",
        "--sensitive", "gender", "--json",
    )  # fmt: skip
    groups = {g["group"]: g["count"] for g in json.loads(out)["features"]["gender"]["groups"]}
    assert groups["(missing)"] == 60 and sum(groups.values()) == 3000


def test_one_group_and_constant_predictions_are_marked(cli, files) -> None:
    code, out, _ = cli(
        "--data", str(files["degenerate"]), "--label", "label", "--pred", "prediction",
        "--sensitive", "gender",
    )  # fmt: skip
    assert code == 0
    assert "only one group is compared" in out
    assert "All 3000 predictions are negative" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "label", "--pred", "prediction", "--sensitive", "sex"], "'sex' is not in"),
        (["--label", "label", "--pred", "prediction", "--max", "dpd"], "is not METRIC=VALUE"),
        (["--label", "label", "--pred", "prediction", "--threshold", "0.3"], "--score only"),
        (["--label", "label", "--sensitive", "gender"], "--data needs --label"),
        (["--version", "2", "--label", "l"], "applies to --model only"),
    ],
)
def test_bad_data_arguments_are_one_clear_line(cli, files, args, message) -> None:
    if "--sensitive" not in args:
        args = [*args, "--sensitive", "gender"]
    code, out, err = cli("--data", str(files["eval"]), *args)
    assert code == 2 and not out
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{labels}", "--label", "label", "--pred", "prediction"], "must be binary"),
        (["--data", "{nowhere}", "--label", "label", "--pred", "prediction"], "does not exist"),
        (["--model", "churn-predictor"], "--model needs --version"),
        (["--model", "churn-predictor", "--version", "2", "--label", "y"], "Only --data takes"),
        (["--model", "churn-predictor", "--version", "2", "--log", "--sensitive", "age_band"],
         "leave out --sensitive"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(cli, files, args, message) -> None:
    paths = {"labels": files["labels"], "nowhere": files["eval"].with_name("nowhere.csv")}
    args = [a.format(**paths) for a in args] + ["--sensitive", "gender"] * ("--data" in args)
    code, out, err = cli(*args)
    assert code == 2 and not out
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_labels_minus_one_and_one_with_a_positive_label(cli, files) -> None:
    common = ("--label", "label", "--pred", "prediction", "--sensitive", "gender", "--json")
    _, zero_one, _ = cli("--data", str(files["eval"]), *common)
    code, signed, err = cli("--data", str(files["signed"]), *common, "--positive-label", "1")
    assert code == 1, err
    assert json.loads(signed)["features"] == json.loads(zero_one)["features"]
    # The other class as the favourable one turns every rate around.
    _, flipped, _ = cli("--data", str(files["signed"]), *common, "--positive-label", "-1")
    assert json.loads(flipped)["features"] != json.loads(zero_one)["features"]

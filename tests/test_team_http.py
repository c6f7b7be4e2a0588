"""The CLI on a team's store behind a real `mlflow server --serve-artifacts`: every --json
output is one JSON document on stdout, a logged drift check keeps its files where the server
keeps everyone's artifacts, and the reference data is found without a policy entry for it.

One server for the whole module: starting one takes a while.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops_core.config import Settings
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.conftest import settings_for
from tests.servers import mlflow_server
from tests.team_store import TeamStore, churn_frame
from tests.test_cli import run_cli
from tests.test_tokens import demo_token

CHURN = "team-churn"
# Only the current data and the drift gate: the reference set is left to discovery.
POLICY = """
[models."team-churn".data]
current_files = ["{current}"]

[models."team-churn".drift]
max_drift_share = 0.2
"""


@dataclass(frozen=True)
class Served:
    url: str
    artifacts_dir: Path
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module")
def served(team_store: TeamStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("team-http")
    shutil.copy(team_store.folder / "mlflow.db", folder / "mlflow.db")
    current = churn_frame(400, 21, shift=25.0)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3)
    current["timestamp"] = [start + timedelta(minutes=10 * i) for i in range(len(current))]
    current.to_parquet(folder / "current.parquet")
    panel = folder / "panel"
    panel.mkdir()
    (panel / "policy.toml").write_text(POLICY.format(current=folder / "current.parquet"))
    with mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder / "served") as url:
        settings = settings_for(panel, MLFLOW_TRACKING_URI=url)
        db.upgrade(settings.db_url)
        create_demo_accounts(settings)
        env = {
            "MLOPS_DATA_DIR": str(panel),
            "MLFLOW_TRACKING_URI": url,
            "MLOPS_TOKEN": demo_token(settings, "requester"),
        }
        yield Served(url, folder / "served", settings, env)


def json_of(served: Served, *args: str, codes: tuple[int, ...] = (0,)) -> dict | list:
    result = run_cli(*args, "--json", env=served.env)
    assert result.returncode in codes, result.stderr
    # Exactly one document: json.loads refuses anything before or after it.
    return json.loads(result.stdout)


def test_every_json_output_is_one_document_over_http(served: Served) -> None:
    models = json_of(served, "models")
    assert CHURN in {model["name"] for model in models}
    requests = json_of(served, "requests")
    assert requests == []
    reconcile = json_of(served, "reconcile", codes=(0, 1))
    assert isinstance(reconcile, dict | list)
    gate = json_of(served, "gate", "--model", CHURN, "--version", "2", codes=(0, 1))
    assert gate["model"] == CHURN
    drift = json_of(served, "drift", "--model", CHURN, "--version", "1", "--no-log", codes=(0, 1))
    assert drift["reference"].startswith("training dataset 'churn-train' logged with run")


def test_a_logged_drift_check_lands_in_the_servers_artifact_store(served: Served) -> None:
    result = run_cli("drift", "--model", CHURN, "--version", "1", "--json", env=served.env)
    # MLflow prints "View run ... at: http://..." for runs on a tracking server.
    assert "View run" not in result.stdout and result.returncode in (0, 1), result.stderr
    summary = json.loads(result.stdout)
    # The policy's gate decides, and says so.
    assert summary["decision_threshold"] == 0.2
    assert summary["threshold_source"].startswith('policy models."team-churn".drift')
    assert result.returncode == (1 if summary["drifted"] else 0)

    registry = Registry(served.url)
    run = registry.client.get_run(summary["mlflow_run_id"])
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    files = registry.list_artifacts(run.info.run_id)
    assert {"drift/summary.json", "drift/report.html", "drift/snapshot.json"} <= set(files)
    local = registry.client.download_artifacts(run.info.run_id, "drift/summary.json")
    assert json.loads(Path(local).read_text())["model"] == CHURN
    assert list(served.artifacts_dir.rglob("summary.json"))
    assert not (served.settings.data_dir / "artifacts").exists()


def _with_tokens(served: Served, person: str) -> dict[str, str]:
    return {**served.env, "MLOPS_TOKEN": demo_token(served.settings, person)}


def test_no_policy_entry_means_no_promotion_and_policy_init_gets_a_team_started_over_http(
    served: Served, tmp_path: Path
) -> None:
    fraud = run_cli(
        "request",
        "--model",
        "team-legacy-fraud",
        "--version",
        "2",
        "--reason",
        "x",
        "--json",
        env=served.env,
    )
    assert fraud.returncode == 2 and "No policy names where team-legacy-fraud" in fraud.stderr
    draft_file = tmp_path / "draft.toml"
    init = run_cli("policy", "init", "--output", str(draft_file), env=served.env)
    assert init.returncode == 0, init.stderr
    draft = draft_file.read_text()
    assert 'target = "stage:Production"  # found: v1 is in stage Production' in draft
    check = run_cli("policy", "check", "--file", str(draft_file), "--json", env=served.env)
    assert check.returncode == 1 and json.loads(check.stdout)["problems"]


def test_a_stage_promotion_over_http_moves_exactly_the_stage(served: Served) -> None:
    # Last in the module: it gives the team's stage-only model a policy.
    policy_file = served.settings.data_dir / "policy.toml"
    policy_file.write_text(
        policy_file.read_text()
        + '\n[models."team-legacy-fraud"]\ntarget = "stage:Production"\n'
        + '[models."team-legacy-fraud".min_metrics]\nroc_auc = 0.5\n'
    )
    request = json_of(
        served, "request", "--model", "team-legacy-fraud", "--version", "2", "--reason", "newer"
    )
    assert (request["target"], request["champion_version"]) == ("stage:Production", "1")
    approve = run_cli(
        "approve",
        "--request",
        str(request["id"]),
        "--comment",
        "checked",
        "--json",
        env=_with_tokens(served, "approver"),
    )
    assert approve.returncode == 0, approve.stderr
    assert json.loads(approve.stdout)["status"] == "applied"
    versions = Registry(served.url).list_versions("team-legacy-fraud")
    assert {v.version: v.stage for v in versions} == {"2": "Production", "1": "Archived"}
    assert Registry(served.url)._model("team-legacy-fraud").aliases == {}

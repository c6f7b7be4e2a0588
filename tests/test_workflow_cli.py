"""Gates, the workflow and the audit log from the command line, as a CI pipeline uses them."""

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from mlops_core.commands.cli import main
from mlops_core.config import Settings, load_settings
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.stores import db
from tests.test_cli import run_cli
from tests.test_promotion import copy_demo_env

CHURN = ["--model", "churn-predictor"]


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = copy_demo_env(demo_settings, tmp_path_factory.mktemp("workflow-cli"))
    settings = load_settings(env)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    return env


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run the CLI in-process against the private store: (exit code, stdout, stderr)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_gate_exit_codes_for_ci(cli, env: dict[str, str]) -> None:
    code, out, _ = cli("gate", *CHURN, "--version", "3", "--json")
    assert code == 0 and json.loads(out)["passed"] is True
    code, out, _ = cli("gate", *CHURN, "--version", "2")
    assert code == 1 and "failed  fairness gender demographic_parity_difference" in out
    code, _, err = cli("gate", *CHURN, "--version", "99")
    assert code == 2 and err.startswith("error:")
    # The way a pipeline runs it: a real process, Markdown for the job summary.
    result = run_cli("gate", *CHURN, "--version", "2", "--markdown", env=env)
    assert result.returncode == 1, result.stderr
    assert "| fairness gender demographic\\_parity\\_difference | failed |" in result.stdout


def test_request_approve_rollback_and_audit(cli, tmp_path: Path) -> None:
    code, out, _ = cli("request", *CHURN, "--version", "3", "--as", "requester", "--reason", "AUC")
    assert code == 0
    request_id = out.strip()
    code, _, err = cli("request", *CHURN, "--version", "2", "--as", "requester", "--reason", "x")
    assert code == 2 and f"Request #{request_id}" in err and "still open" in err
    code, _, err = cli("approve", "--request", request_id, "--as", "requester", "--comment", "ok")
    assert code == 2 and "needs the approver role" in err
    code, out, _ = cli("approve", "--request", request_id, "--as", "approver", "--comment", "ok")
    assert code == 0 and "now points at v3" in out
    code, out, _ = cli("requests", "--json")
    assert json.loads(out)[0]["status"] == "applied"
    code, out, _ = cli("rollback", *CHURN, "--as", "approver", "--reason", "incident 12")
    assert code == 0 and "points at v1 again" in out
    assert cli("reconcile")[0] == 0
    code, out, _ = cli("audit", "verify")
    assert code == 0 and out.startswith("Audit chain intact")
    exported = tmp_path / "audit.csv"
    assert (
        cli("audit", "export", "--csv", "--output", str(exported), "--action", "rollback")[0] == 0
    )
    (row,) = csv.DictReader(exported.open())
    assert (row["actor"], row["actor_via"], row["reason"]) == ("approver", "cli", "incident 12")


def test_override_needs_an_admin_and_a_justification(cli, env: dict[str, str]) -> None:
    code, out, _ = cli(
        "request", *CHURN, "--version", "2", "--as", "requester", "--reason", "AUC", "--json"
    )
    request_id = str(json.loads(out)["id"])
    approve = ["approve", "--request", request_id, "--comment", "accepted risk"]
    code, _, err = cli(*approve, "--as", "approver")
    assert code == 2 and "Gates block" in err
    code, _, err = cli(*approve, "--as", "approver", "--override", "--justification", "x")
    assert code == 2 and "needs the admin role" in err
    code, _, err = cli(*approve, "--as", "admin", "--override")
    assert code == 2 and "justification" in err
    code, out, _ = cli(*approve, "--as", "admin", "--override", "--justification", "RX-12")
    assert code == 0 and "now points at v2" in out
    code, _, _ = cli("rollback", *CHURN, "--as", "admin", "--reason", "back to v1")
    assert code == 0


def test_audit_verify_names_a_tampered_event(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    monkeypatch.setenv("MLOPS_DB_URL", url)
    db.upgrade(url)
    create_demo_accounts(load_settings())
    code, out, _ = cli("request", *CHURN, "--version", "3", "--as", "requester", "--reason", "x")
    assert cli("cancel", "--request", out.strip(), "--as", "requester")[0] == 0
    with db.get_engine(url).begin() as connection:
        first = connection.execute(text("SELECT min(id) FROM audit_event")).scalar()
        connection.execute(text("UPDATE audit_event SET actor = 'x' WHERE id = :id"), {"id": first})
    code, out, _ = cli("audit", "verify")
    assert code == 1 and f"broken at event #{first}" in out

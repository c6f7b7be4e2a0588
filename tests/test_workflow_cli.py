"""Gates, the workflow and the audit log from the command line, as a CI pipeline uses them."""

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from mlops_core.commands.cli import main
from mlops_core.config import Settings
from mlops_core.stores import db
from tests.test_cli import run_cli
from tests.test_promotion import copy_demo_env

CHURN = ["--model", "churn-predictor"]


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return copy_demo_env(demo_settings, tmp_path_factory.mktemp("workflow-cli"))


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
    assert out.strip().endswith("anchored outside the database.")
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
    monkeypatch.setenv("MLOPS_AUDIT_ANCHOR_FILE", str(tmp_path / "audit-anchors.jsonl"))
    code, out, _ = cli("request", *CHURN, "--version", "3", "--as", "requester", "--reason", "x")
    assert cli("cancel", "--request", out.strip(), "--as", "requester")[0] == 0
    with db.get_engine(url).begin() as connection:
        first = connection.execute(text("SELECT min(id) FROM audit_event")).scalar()
        connection.execute(text("UPDATE audit_event SET actor = 'x' WHERE id = :id"), {"id": first})
    code, out, _ = cli("audit", "verify")
    assert code == 1 and f"broken at event #{first}" in out


def test_audit_verify_fails_on_a_truncated_chain_or_a_forged_anchor(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    anchors = tmp_path / "audit-anchors.jsonl"
    monkeypatch.setenv("MLOPS_DB_URL", url)
    monkeypatch.setenv("MLOPS_AUDIT_ANCHOR_FILE", str(anchors))
    code, out, _ = cli("request", *CHURN, "--version", "3", "--as", "requester", "--reason", "x")
    assert cli("cancel", "--request", out.strip(), "--as", "requester")[0] == 0
    code, out, _ = cli("audit", "verify")
    assert code == 0 and len(out.splitlines()) == 1, out

    sound = anchors.read_text()
    forged = {"id": 1, "hash": "a" * 64, "mac": "0" * 64}
    anchors.write_text(sound + json.dumps(forged) + "\n")
    code, out, _ = cli("audit", "verify")
    assert code == 1 and len(out.splitlines()) == 1
    assert "Audit chain broken: line 3 of the anchor file" in out and "not signed" in out

    anchors.write_text(sound)
    with db.get_engine(url).begin() as connection:
        last = connection.execute(text("SELECT max(id) FROM audit_event")).scalar()
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": last})
    code, out, _ = cli("audit", "verify")
    assert code == 1 and len(out.splitlines()) == 1
    assert f"broken at event #{last}: it was anchored" in out and "were deleted" in out

"""Gates, the workflow, accounts and the audit log from the command line, as a CI pipeline
uses them: every state change authenticates with an access token."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from mlops_core.commands.cli import main
from mlops_core.config import Settings, load_settings
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.stores import audit, db
from tests.test_cli import run_cli
from tests.test_promotion import copy_demo_env
from tests.test_tokens import demo_token

CHURN = ["--model", "churn-predictor"]
PEOPLE = ("viewer", "requester", "approver", "admin")


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return copy_demo_env(demo_settings, tmp_path_factory.mktemp("workflow-cli"))


def seed_people(settings: Settings) -> dict[str, str]:
    """The demo accounts in a fresh panel database, and an access token for each."""
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    return {name: demo_token(settings, name) for name in PEOPLE}


@pytest.fixture(scope="module")
def tokens(env: dict[str, str]) -> dict[str, str]:
    return seed_people(load_settings(env))


@pytest.fixture
def cli(
    env: dict[str, str],
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
):
    """Run the CLI in-process against the private store: (exit code, stdout, stderr).

    `as_user` puts that person's token in MLOPS_TOKEN; `stdin` is what the command reads.
    """
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*args: str, as_user: str | None = None, stdin: str = "") -> tuple[int, str, str]:
        if as_user is None:
            monkeypatch.delenv("MLOPS_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MLOPS_TOKEN", tokens[as_user])
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_gate_exit_codes_for_ci(cli, env: dict[str, str]) -> None:
    code, out, _ = cli("gate", *CHURN, "--version", "3", "--json")
    assert code == 0 and json.loads(out)["passed"] is True
    code, out, _ = cli("gate", *CHURN, "--version", "2")
    assert code == 1
    assert re.search(r"failed +fairness gender demographic_parity_difference", out)
    code, _, err = cli("gate", *CHURN, "--version", "99")
    assert code == 2 and err.startswith("error:")
    # The way a pipeline runs it: a real process, Markdown for the job summary.
    result = run_cli("gate", *CHURN, "--version", "2", "--markdown", env=env)
    assert result.returncode == 1, result.stderr
    assert "| fairness gender demographic\\_parity\\_difference | failed |" in result.stdout


def test_state_changes_need_a_token_and_as_must_match_it(
    cli, tokens: dict[str, str], tmp_path: Path
) -> None:
    request = ["request", *CHURN, "--version", "3", "--reason", "AUC"]
    code, _, err = cli(*request, "--as", "requester")
    assert code == 2
    assert err.startswith("error: `request` changes state, so it needs an access token")
    code, _, err = cli(*request, "--as", "approver", as_user="requester")
    assert code == 2 and "--as approver does not match the access token" in err
    token_file = tmp_path / "token"
    token_file.write_text(tokens["requester"] + "\n")
    code, out, _ = cli(*request, "--as", "Requester", "--token-file", str(token_file))
    assert code == 0
    code, _, err = cli("cancel", "--request", out.strip(), "--token-file", str(tmp_path / "no"))
    assert code == 2 and "Cannot read --token-file" in err
    code, _, err = cli("cancel", "--request", out.strip(), as_user="viewer")
    assert code == 2 and "needs the requester role" in err
    assert cli("cancel", "--request", out.strip(), as_user="requester")[0] == 0
    # Reading needs no token.
    assert cli("requests", "--json")[0] == 0


def test_request_approve_rollback_and_audit(cli, tmp_path: Path) -> None:
    code, out, _ = cli("request", *CHURN, "--version", "3", "--reason", "AUC", as_user="requester")
    assert code == 0
    request_id = out.strip()
    code, _, err = cli("request", *CHURN, "--version", "2", "--reason", "x", as_user="requester")
    assert code == 2 and f"Request #{request_id}" in err and "still open" in err
    approve = ["approve", "--request", request_id, "--comment", "ok"]
    code, _, err = cli(*approve, as_user="requester")
    assert code == 2 and "needs the approver role" in err
    code, out, _ = cli(*approve, as_user="approver")
    assert code == 0 and "now points at v3" in out
    code, out, _ = cli("requests", "--json")
    assert json.loads(out)[0]["status"] == "applied"
    code, out, _ = cli("rollback", *CHURN, "--reason", "incident 12", as_user="approver")
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
    assert (row["actor"], row["actor_via"], row["reason"]) == ("approver", "token", "incident 12")


def test_override_needs_an_admin_and_a_justification(cli) -> None:
    code, out, _ = cli(
        "request", *CHURN, "--version", "2", "--reason", "AUC", "--json", as_user="requester"
    )
    request_id = str(json.loads(out)["id"])
    approve = ["approve", "--request", request_id, "--comment", "accepted risk"]
    code, _, err = cli(*approve, as_user="approver")
    assert code == 2 and "Gates block" in err
    code, _, err = cli(*approve, "--override", "--justification", "x", as_user="approver")
    assert code == 2 and "needs the admin role" in err
    code, _, err = cli(*approve, "--override", as_user="admin")
    assert code == 2 and "justification" in err
    code, out, _ = cli(*approve, "--override", "--justification", "RX-12", as_user="admin")
    assert code == 0 and "now points at v2" in out
    code, _, _ = cli("rollback", *CHURN, "--reason", "back to v1", as_user="admin")
    assert code == 0


def test_tokens_from_the_command_line(cli) -> None:
    code, out, err = cli(
        "tokens", "create", "--as", "approver", "--name", "laptop", "--days", "7",
        "--password-stdin", stdin="approver-demo\n",
    )  # fmt: skip
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("mlp_") and "'laptop' for approver (approver)" in err
    code, _, err = cli(
        "tokens", "create", "--as", "approver", "--name", "x", "--password-stdin", stdin="no\n"
    )
    assert code == 2 and "Wrong username or password" in err

    code, out, _ = cli("tokens", "list", "--json", as_user="approver")
    listed = {t["name"]: t for t in json.loads(out)}
    assert set(listed) == {"approver test", "laptop"}
    assert listed["laptop"]["status"] == "active" and listed["laptop"]["scopes"] == ["approver"]
    code, _, err = cli("tokens", "list", "--all", as_user="approver")
    assert code == 2 and "needs the admin role" in err
    code, out, _ = cli("tokens", "list", "--all", as_user="admin")
    assert code == 0 and "laptop" in out and "admin test" in out

    code, out, _ = cli("tokens", "revoke", str(listed["laptop"]["id"]), as_user="approver")
    assert code == 0 and "Revoked access token" in out
    code, out, _ = cli("tokens", "list", as_user="approver")
    assert "revoked" in out


def test_service_account_for_ci_requests_but_never_approves(
    cli, env: dict[str, str], tokens: dict[str, str]
) -> None:
    code, _, err = cli("users", "add", "ci", "--service-account", as_user="approver")
    assert code == 2 and "needs the admin role" in err
    code, out, _ = cli("users", "add", "ci", "--service-account", as_user="admin")
    assert code == 0 and "Saved service account ci with roles requester" in out
    code, _, err = cli(
        "users", "add", "ci", "--service-account", "--role", "approver", as_user="admin"
    )
    assert code == 2 and "only the requester role" in err
    code, out, _ = cli("users", "list")
    assert "service" in out
    code, out, err = cli(
        "tokens", "create", "--as", "admin", "--for", "ci", "--name", "pipeline",
        "--password-stdin", stdin="admin-demo\n",
    )  # fmt: skip
    assert code == 0, err
    pipeline = {**env, "MLOPS_TOKEN": out.strip()}
    # As the pipeline runs it: a real process with the token in its environment.
    result = run_cli("request", *CHURN, "--version", "3", "--reason", "nightly", env=pipeline)
    assert result.returncode == 0, result.stderr
    request_id = result.stdout.strip()
    result = run_cli("approve", "--request", request_id, "--comment", "self", env=pipeline)
    assert result.returncode == 2 and "needs the approver role" in result.stderr

    code, out, err = cli("users", "remove", "ci", as_user="admin")
    assert code == 0, err
    result = run_cli("cancel", "--request", request_id, env=pipeline)
    assert result.returncode == 2 and "was revoked on" in result.stderr
    assert cli("reject", "--request", request_id, "--comment", "no", as_user="approver")[0] == 0


def test_audit_verify_names_a_tampered_event(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    monkeypatch.setenv("MLOPS_DB_URL", url)
    monkeypatch.setenv("MLOPS_AUDIT_ANCHOR_FILE", str(tmp_path / "audit-anchors.jsonl"))
    monkeypatch.setenv("MLOPS_TOKEN", seed_people(load_settings())["requester"])
    assert main(["request", *CHURN, "--version", "3", "--reason", "x"]) == 0
    with db.get_engine(url).begin() as connection:
        first = connection.execute(text("SELECT min(id) FROM audit_event")).scalar()
        connection.execute(text("UPDATE audit_event SET actor = 'x' WHERE id = :id"), {"id": first})
    code, out, _ = cli("audit", "verify")
    assert code == 1 and f"broken at event #{first}" in out
    assert audit.verify(load_settings()).first_broken_id == first


def test_audit_verify_fails_on_a_truncated_chain_or_a_forged_anchor(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    anchors = tmp_path / "audit-anchors.jsonl"
    monkeypatch.setenv("MLOPS_DB_URL", url)
    monkeypatch.setenv("MLOPS_AUDIT_ANCHOR_FILE", str(anchors))
    monkeypatch.setenv("MLOPS_TOKEN", seed_people(load_settings())["requester"])
    assert main(["request", *CHURN, "--version", "3", "--reason", "x"]) == 0
    capsys.readouterr()  # the request's id
    code, out, _ = cli("audit", "verify")
    assert code == 0 and len(out.splitlines()) == 1, out

    sound = anchors.read_text()
    forged = {"id": 1, "hash": "a" * 64, "mac": "0" * 64}
    anchors.write_text(sound + json.dumps(forged) + "\n")
    code, out, _ = cli("audit", "verify")
    assert code == 1 and len(out.splitlines()) == 1
    line = len(sound.splitlines()) + 1
    assert f"Audit chain broken: line {line} of the anchor file" in out and "not signed" in out

    anchors.write_text(sound)
    with db.get_engine(url).begin() as connection:
        last = connection.execute(text("SELECT max(id) FROM audit_event")).scalar()
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": last})
    code, out, _ = cli("audit", "verify")
    assert code == 1 and len(out.splitlines()) == 1
    assert f"broken at event #{last}: it was anchored" in out and "were deleted" in out

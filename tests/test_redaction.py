"""Credentials in URLs never reach a page, the command line or an error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_core.config import load_settings
from mlops_core.redaction import redact
from mlops_core.stores import audit, db
from tests.apptest import app_test, assert_no_exception, shown
from tests.test_cli import run_cli


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Cannot reach http://user:tok123@host:5000/api", "Cannot reach http://***@host:5000/api"),
        (
            "postgresql+psycopg2://panel:s3cret@db:5432/panel",
            "postgresql+psycopg2://***@db:5432/panel",
        ),
        ("https://tok123@mlflow.example/ and more", "https://***@mlflow.example/ and more"),
        ("http://host/x?run=1&access_token=abc&y=2", "http://host/x?run=1&access_token=***&y=2"),
        ("https://host/p?sig=abc#api_key=zzz", "https://host/p?sig=***#api_key=***"),
        ("sqlite:////data/mlflow.db", "sqlite:////data/mlflow.db"),
        ("no url here: a@b", "no url here: a@b"),
    ],
)
def test_userinfo_and_secret_parameters_are_hidden(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MLFLOW_TRACKING_URI", "postgresql://u:secret@127.0.0.1:notaport/db", "not a valid"),
        ("MLOPS_DB_URL", "postgresql://u:secret@127.0.0.1:port/db", "not a valid"),
        ("MLFLOW_TRACKING_URI", "http://u:secret@127.0.0.1:x/", "port that is not a number"),
        ("MLFLOW_TRACKING_URI", "http://u:secret@127.0.0.1:9/", "Cannot reach"),
    ],
)
def test_the_cli_names_a_bad_url_in_one_line_without_its_secret(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    result = run_cli("models", env={"MLOPS_DATA_DIR": str(tmp_path), name: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_the_page_shows_an_unreachable_server_without_its_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://ci:tok123@127.0.0.1:9"}
    at = app_test(monkeypatch, env).run()
    assert_no_exception(at)
    message = " ".join(shown(e) for e in at.error)
    assert "Cannot reach the MLflow tracking server" in message
    assert "tok123" not in message


def test_the_audit_log_stores_no_credential_quoted_in_an_event(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path)})
    db.upgrade(settings.db_url)
    audit.record(
        settings,
        audit.SYSTEM,
        "apply_failed",
        reason="Cannot reach http://ci:tok123@mlflow:5000/",
        details={"error": "postgresql://panel:s3cret@db/panel refused", "n": 1},
    )
    (event,) = audit.list_events(settings.db_url)
    assert "tok123" not in event.reason and "s3cret" not in event.details["error"]
    assert event.details["n"] == 1
    assert audit.verify(settings).ok

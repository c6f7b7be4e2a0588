"""The users and roles page through AppTest: an admin sees the accounts, their lock state
and the access file's grants, unlocks and resets a password; anyone else is refused."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings
from mlops_core.errors import PermissionDenied
from mlops_core.people.account_status import account_statuses
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.people.auth import authenticate
from mlops_core.stores import audit, db
from tests.apptest import ADMIN, APPROVER, VIEWER, assert_no_exception, shown
from tests.conftest import settings_for
from tests.test_account_recovery import ADDRESSES, lock_out

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "users.py")
ACCESS = """
[roles]
viewer = ["*"]
approver = ["carol@example.com"]

[groups]
"mlops-admins" = ["admin"]
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "access.toml").write_text(ACCESS)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    settings = settings_for(tmp_path)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    return settings


def open_users(as_actor) -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["actor"] = as_actor
    at.run()
    assert_no_exception(at)
    return at


def table(at: AppTest, index: int) -> list[dict]:
    return at.dataframe[index].value.to_dict("records")


def test_admin_sees_accounts_and_grants_then_unlocks_and_resets(settings: Settings) -> None:
    lock_out(settings, "requester")
    authenticate(settings, "approver", "approver-demo")
    at = open_users(ADMIN)
    accounts = {row["Username"]: row for row in table(at, 0)}
    assert set(accounts) == {"viewer", "requester", "approver", "admin"}
    assert accounts["requester"]["Locked until"] and not accounts["viewer"]["Locked until"]
    assert accounts["approver"]["Last sign-in"] and not accounts["viewer"]["Last sign-in"]
    assert accounts["requester"]["Roles now"] == "requester, viewer"
    assert table(at, 1) == [
        {"Role": "approver", "Usernames and e-mails": "carol@example.com"},
        {"Role": "viewer", "Usernames and e-mails": "*"},
    ]
    assert table(at, 2) == [{"OIDC group": "mlops-admins", "Roles": "admin"}]

    at.selectbox(key="users_account").set_value("requester").run()
    assert "requester is locked until" in shown(at.warning[0])
    at.button(key="unlock_requester").click().run()
    assert_no_exception(at)
    assert "Unlocked requester." in shown(at.success[0])
    assert authenticate(settings, "requester", "requester-demo", client=ADDRESSES[0])

    at.text_input(key="reset_requester_1").input("brand-new-pass")
    at.text_input(key="reset_requester_2").input("brand-new-pass")
    at.button(key="FormSubmitter:reset_requester-Reset password").click().run()
    assert_no_exception(at)
    assert "New password set for requester" in shown(at.success[0])
    assert authenticate(settings, "requester", "brand-new-pass")
    actions = [e.action for e in audit.list_events(settings.db_url)]
    assert {"account_unlocked", "password_reset"} <= set(actions)


def test_a_short_password_is_refused_with_a_message(settings: Settings) -> None:
    at = open_users(ADMIN)
    at.selectbox(key="users_account").set_value("viewer").run()
    at.text_input(key="reset_viewer_1").input("short")
    at.text_input(key="reset_viewer_2").input("short")
    at.button(key="FormSubmitter:reset_viewer-Reset password").click().run()
    assert_no_exception(at)
    assert "at least 8 characters" in shown(at.error[0])


@pytest.mark.parametrize("who", [VIEWER, APPROVER, None])
def test_anyone_but_an_admin_is_refused(settings: Settings, who) -> None:
    at = open_users(who)
    assert at.title[0].value in ("Not allowed", "Sign in")
    assert "needs the admin role" in shown(at.error[0]) or "Not signed in" in shown(at.error[0])
    assert not at.dataframe
    with pytest.raises(PermissionDenied):
        account_statuses(settings, who)

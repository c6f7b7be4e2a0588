"""The sidebar's access tokens and the sign-in session, driven through AppTest on app.py."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings
from mlops_core.errors import PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.people.auth import resolve_local_actor
from mlops_core.people.tokens import authenticate_token, list_tokens
from mlops_core.people.user_admin import manage_user
from mlops_core.stores import db
from tests.apptest import ADMIN, APPROVER, app_test, assert_no_exception
from tests.conftest import settings_for

CREATE = "FormSubmitter:token_form-Create token"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the demo accounts and no models (the overview says so, quickly)."""
    folder = tmp_path_factory.mktemp("tokens-view")
    settings = settings_for(folder)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    return folder


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return settings_for(data_dir)


def _tokens_sidebar() -> None:
    # AppTest runs only the page file after the first run of app.py, so the sidebar section
    # is driven on its own, as app.py renders it.
    from ui.app_state import settings
    from ui.identity import current_actor
    from ui.tokens_view import tokens_sidebar

    current = settings()
    tokens_sidebar(current, current_actor(current))


def open_app(monkeypatch: pytest.MonkeyPatch, data_dir: Path, actor: Actor | None) -> AppTest:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(data_dir))
    st.cache_resource.clear()
    at = AppTest.from_function(_tokens_sidebar, default_timeout=60)
    at.session_state["actor"] = actor
    at.run()
    assert_no_exception(at)
    return at


def test_app_renders_the_tokens_section_in_the_sidebar(monkeypatch, data_dir) -> None:
    at = app_test(monkeypatch, {"MLOPS_DATA_DIR": str(data_dir)}, APPROVER).run()
    assert_no_exception(at)
    assert "token_name" in {t.key for t in at.sidebar.text_input}


def test_a_token_is_shown_once_and_can_be_revoked(monkeypatch, data_dir, settings) -> None:
    at = open_app(monkeypatch, data_dir, APPROVER)
    assert "No active tokens." in [c.value for c in at.caption]
    assert at.multiselect(key="token_scopes").value == ["approver"]
    at.text_input(key="token_name").input("laptop")
    at.number_input(key="token_days").set_value(7)
    at.button(key=CREATE).click().run()
    assert_no_exception(at)
    (shown,) = at.code
    secret = shown.value
    assert secret.startswith("mlp_") and "not shown again" in at.success[0].value
    actor = authenticate_token(settings, secret)
    assert (actor.username, actor.roles) == ("approver", {"approver"})
    (info,) = list_tokens(settings, actor)
    assert (info.name, (info.expires_at - info.created_at).days) == ("laptop", 7)

    at.run()  # any next interaction: the token is gone from the page
    assert not at.code
    at.button(key=f"revoke_token_{info.id}").click().run()
    assert_no_exception(at)
    with pytest.raises(PermissionDenied, match="was revoked on"):
        authenticate_token(settings, secret)
    assert f"revoke_token_{info.id}" not in {b.key for b in at.button}


def test_errors_are_one_line_and_admins_see_every_token(monkeypatch, data_dir, settings) -> None:
    at = open_app(monkeypatch, data_dir, APPROVER)
    at.text_input(key="token_name").input("too much")
    at.multiselect(key="token_scopes").set_value([])
    at.button(key=CREATE).click().run()
    assert "Choose at least one role" in at.error[0].value
    at.text_input(key="token_name").input("ok")
    at.button(key=CREATE).click().run()
    tokens = list_tokens(settings, resolve_local_actor(settings, "approver"))
    (info,) = [t for t in tokens if t.status() == "active"]

    admin = open_app(monkeypatch, data_dir, ADMIN)
    assert f"revoke_token_{info.id}" in {b.key for b in admin.button}
    assert any("of approver" in m.value for m in admin.markdown)


def test_single_sign_on_users_make_no_tokens(monkeypatch, data_dir) -> None:
    sso = Actor("approver", frozenset({"approver"}), auth_method="oidc")
    at = open_app(monkeypatch, data_dir, sso)
    assert "token_name" not in {t.key for t in at.text_input}
    assert any("belong to local accounts" in c.value for c in at.caption)


def test_sign_in_starts_a_session_that_a_password_change_ends(
    monkeypatch, data_dir, settings
) -> None:
    env = {"MLOPS_DATA_DIR": str(data_dir)}
    at = app_test(monkeypatch, env, None).run()
    at.text_input[0].input("requester")
    at.text_input[1].input("requester-demo")
    at.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert_no_exception(at)
    assert any("Roles: requester" in c.value for c in at.caption)
    secret = at.session_state["sign_in_session"]

    def page_load() -> AppTest:
        """The next page load of that browser session (AppTest reruns only the page)."""
        again = app_test(monkeypatch, env, None)
        again.session_state["sign_in_session"] = secret
        return again.run()

    assert any("Roles: requester" in c.value for c in page_load().caption)
    admin = resolve_local_actor(settings, "admin")
    manage_user(settings, admin, "requester", "requester-demo", ["requester"])
    signed_out = page_load()
    assert_no_exception(signed_out)
    assert "FormSubmitter:sign_in-Sign in" in {b.key for b in signed_out.button}
    assert "sign_in_session" not in signed_out.session_state

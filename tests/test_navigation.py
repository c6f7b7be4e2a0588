"""Sign-in and navigation per role, through the real app script."""

import pytest

from mlops_core.people.access import page_refusal
from tests.apptest import APPROVER, REQUESTER, VIEWER, actor, app_test, assert_no_exception, shown
from ui.navigation import PAGES, navigation_plan


def test_nobody_signed_in_sees_only_the_sign_in_form(monkeypatch, demo_env) -> None:
    at = app_test(monkeypatch, demo_env, as_actor=None).run()
    assert_no_exception(at)
    # The sign-in page names the product it signs into.
    assert at.title[0].value == "MLOps control panel"
    assert at.subheader[0].value == "Sign in"
    assert not at.dataframe


def test_demo_account_signs_in_with_its_password(monkeypatch, demo_env) -> None:
    at = app_test(monkeypatch, demo_env, as_actor=None).run()
    at.text_input[0].input("viewer")
    at.text_input[1].input("viewer-demo")
    at.button[0].click().run()
    assert_no_exception(at)
    assert at.title[0].value == "Overview"
    assert any("Roles: viewer" in c.value for c in at.sidebar.caption)


def test_wrong_password_is_refused_with_a_message(monkeypatch, demo_env) -> None:
    at = app_test(monkeypatch, demo_env, as_actor=None).run()
    at.text_input[0].input("approver")
    at.text_input[1].input("guess")
    at.button[0].click().run()
    assert_no_exception(at)
    assert "Wrong username or password" in shown(at.error[0])
    assert at.subheader[0].value == "Sign in"


@pytest.mark.parametrize("who", [VIEWER, REQUESTER, APPROVER], ids=lambda a: a.username)
def test_navigation_lists_only_pages_the_role_may_open(who) -> None:
    plan = navigation_plan(who)
    visible = [spec.key for spec, allowed in plan if allowed]
    assert visible == [spec.key for spec in PAGES if page_refusal(who, spec.key) is None]
    assert [spec.key for spec, _ in plan] == [spec.key for spec in PAGES]


def test_signed_in_without_roles_is_told_so(monkeypatch, demo_env) -> None:
    at = app_test(monkeypatch, demo_env, as_actor=actor("stranger", "nothing")).run()
    assert_no_exception(at)
    assert at.title[0].value == "No access yet"

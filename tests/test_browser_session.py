"""Staying signed in, in a real browser: a local sign-in survives a reload, a pasted link and
a new tab through a cookie holding only the session's secret, and a sign-out ends it in
every tab."""

import hashlib
import time

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from mlops_core.config import Settings
from mlops_core.stores.db import SignInSession, session_factory
from tests.browser import chromium, screenshot, sign_in, wait_for_app
from tests.servers import streamlit_app

pytestmark = pytest.mark.browser

COOKIE = "mlops_session"
HOURS = 8


@pytest.fixture(scope="module")
def app_url(demo_env: dict[str, str]):
    with streamlit_app(demo_env) as base:
        yield base


def session_cookie(context: BrowserContext, present: bool = True) -> dict | None:
    """The sign-in cookie once the page has set (or deleted) it; the component runs in a
    frame after the script, so it is polled."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [c for c in context.cookies() if c["name"] == COOKIE]
        if bool(found) == present:
            return found[0] if found else None
        time.sleep(0.2)
    raise AssertionError(f"the {COOKIE} cookie was {'never set' if present else 'not deleted'}")


def session_owner(settings: Settings, secret: str) -> str | None:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    with session_factory(settings.db_url)() as session:
        row = session.get(SignInSession, digest)
    return row.username if row is not None else None


def expect_signed_in(page: Page, heading: str) -> None:
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=30_000)
    assert "signed in with a local account" in page.get_by_test_id("stSidebar").inner_text()


def test_a_sign_in_survives_reloads_and_tabs_and_sign_out_ends_it_everywhere(
    app_url: str, demo_settings: Settings
) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        first = context.new_page()
        sign_in(first, app_url, "requester", "requester-demo")
        expect_signed_in(first, "Overview")

        cookie = session_cookie(context)
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain HTTP here; over HTTPS it is __Host- and Secure
        assert "requester" not in cookie["value"]
        assert abs(cookie["expires"] - (time.time() + HOURS * 3600)) < 300
        assert session_owner(demo_settings, cookie["value"]) == "requester"

        first.reload()
        wait_for_app(first)
        expect_signed_in(first, "Overview")

        # A pasted link in a new tab of the same browser.
        second = context.new_page()
        second.goto(f"{app_url}/approvals")
        wait_for_app(second)
        expect_signed_in(second, "Approvals")
        screenshot(second, "session-new-tab")

        first.get_by_role("button", name="Sign out").click()
        expect(first.get_by_role("textbox", name="Username")).to_be_visible(timeout=30_000)
        session_cookie(context, present=False)
        assert session_owner(demo_settings, cookie["value"]) is None

        second.reload()
        wait_for_app(second)
        expect(second.get_by_role("textbox", name="Username")).to_be_visible(timeout=30_000)
        expect(second.get_by_role("heading", name="MLOps control panel")).to_be_visible()
        screenshot(second, "session-signed-out")
        assert second.get_by_test_id("stException").count() == 0
        context.close()


def test_an_admin_opens_users_and_roles(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, f"{app_url}/users", "admin", "admin-demo")
        expect(page.get_by_role("heading", name="Users and roles")).to_be_visible(timeout=30_000)
        page.get_by_test_id("stDataFrame").first.wait_for()
        screenshot(page, "users-and-roles")
        assert page.get_by_test_id("stException").count() == 0

"""A person signs in with a local demo account in a real browser and sees their pages."""

import pytest
from playwright.sync_api import expect

from tests.browser import chromium, screenshot, sign_in
from tests.servers import streamlit_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(demo_env: dict[str, str]):
    with streamlit_app(demo_env) as base:
        yield base


def test_viewer_signs_in_and_sees_only_viewer_pages(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, app_url, "viewer", "viewer-demo")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=30_000)
        page.get_by_test_id("stDataFrame").first.wait_for()
        sidebar = page.get_by_test_id("stSidebar")
        assert "Roles: viewer" in sidebar.inner_text()
        links = page.get_by_test_id("stSidebarNavLink").all_inner_texts()
        assert not any("Approvals" in link for link in links)
        screenshot(page, "sign-in-viewer")
        assert page.get_by_test_id("stException").count() == 0


def test_wrong_password_stays_on_the_sign_in_form(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, app_url, "approver", "not-the-password", succeeds=False)
        expect(page.get_by_text("Wrong username or password")).to_be_visible(timeout=30_000)
        screenshot(page, "sign-in-refused")


def test_viewer_following_a_link_to_approvals_lands_on_not_allowed(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, f"{app_url}/approvals", "viewer", "viewer-demo")
        body = page.get_by_test_id("stMain").inner_text()
        assert "Not allowed" in body and "needs the" in body
        screenshot(page, "not-allowed")

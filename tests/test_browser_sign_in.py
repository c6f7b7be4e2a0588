"""A person signs in with a local demo account in a real browser and sees their pages."""

import pytest

from tests.browser import chromium, screenshot, sign_in, wait_for_app
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
        assert page.get_by_role("heading", name="Overview").is_visible()
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
        sign_in(page, app_url, "approver", "not-the-password")
        assert page.get_by_text("Wrong username or password").is_visible()
        screenshot(page, "sign-in-refused")


def test_viewer_opening_the_approvals_url_is_not_allowed(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, app_url, "viewer", "viewer-demo")
        page.goto(f"{app_url}/approvals")
        wait_for_app(page)
        body = page.get_by_test_id("stMain").inner_text()
        assert "Not allowed" in body or "approvals" not in page.url

"""Real-browser tests: Playwright for Python driving Debian's Chromium.

Follows Streamlit's own e2e conventions: wait for the app to be connected and its script to
be idle before asserting. Screenshots land in test-artifacts/screenshots.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def _require_chromium() -> None:
    if Path(CHROMIUM).exists() and shutil.which(CHROMIUM):
        return
    reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"A real browser is required on CI: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    _require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_app(page: Page, timeout: float = 60_000) -> None:
    """Connected, and the script finished: Streamlit's own e2e readiness check."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout
    )
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )
    page.wait_for_timeout(300)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


def screenshot(page: Page, name: str) -> Path:
    # Data frames and charts paint on canvas after the script finishes.
    page.wait_for_timeout(1500)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_page(page: Page, title: str) -> None:
    """Follow the sidebar link, as a person does (a reload would rerun the whole app)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    wait_for_app(page)


def sign_in(page: Page, url: str, username: str, password: str, succeeds: bool = True) -> None:
    """Open `url` (any page of the app) and sign in on the form it shows."""
    page.goto(url)
    wait_for_app(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if succeeds:
        # The rerun after a successful sign-in replaces the form; wait until it has.
        page.get_by_role("textbox", name="Username").wait_for(state="detached", timeout=60_000)
    else:
        page.get_by_test_id("stAlert").first.wait_for(timeout=60_000)
    wait_for_app(page)


def clipped_tables(page: Page) -> list[int]:
    """How many pixels of each data frame on the page lie beyond its visible width."""
    return page.eval_on_selector_all(
        "[data-testid='stDataFrame'] .dvn-scroller",
        "scrollers => scrollers.map(s => s.scrollWidth - s.clientWidth)",
    )

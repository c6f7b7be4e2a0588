"""Nobody reads the panel without signing in, even right after a restart.

Until a session has run app.py once, Streamlit serves the files in pages/ directly (its
folder-based navigation), so each page must guard itself. A fresh server is started here
and every page URL is opened anonymously before `/` was ever loaded.
"""

import pytest

from tests.browser import chromium, screenshot, wait_for_app
from tests.servers import streamlit_app
from ui.navigation import PAGES

pytestmark = pytest.mark.browser

# Text that only a page's real content shows (its data, not its title).
CONTENT_MARKERS = ["churn-predictor", "credit-default", "Export as CSV", "Audit chain"]


def test_every_page_url_refuses_an_anonymous_visitor_on_a_fresh_server(
    demo_env: dict[str, str],
) -> None:
    with streamlit_app(demo_env) as base, chromium() as browser:
        for spec in PAGES:
            # A new context each time: no cookie, no session carried between visits.
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{base}/{spec.key}")
            wait_for_app(page)
            main = page.get_by_test_id("stMain").inner_text()
            assert "sign in" in main.lower(), (spec.key, main[:300])
            for marker in CONTENT_MARKERS:
                assert marker not in main, (spec.key, marker)
            assert page.get_by_test_id("stDataFrame").count() == 0, spec.key
            assert page.get_by_test_id("stDownloadButton").count() == 0, spec.key
            assert page.get_by_test_id("stException").count() == 0, spec.key
            screenshot(page, f"anonymous-{spec.key}")
            context.close()

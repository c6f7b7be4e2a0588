"""End-to-end scenarios in a real Chromium against `streamlit run app.py`.

The module seeds its own demo store because the promotion scenario moves the champion.
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from mlops_core.config import Settings
from mlops_core.demo.scenario import run_demo, training_experiment
from mlops_core.stores.registry import Registry
from tests.browser import (
    chromium,
    clipped_tables,
    open_page,
    screenshot,
    sign_in,
    wait_for_app,
)
from tests.conftest import settings_for
from tests.servers import streamlit_app
from ui.navigation import PAGES

pytestmark = pytest.mark.browser

# A run per row with a column per param and metric, and a column per statistic: these tables
# scroll sideways, as in MLflow's own UI. Every other table fits a 1500 px wide window.
WIDE_BY_NATURE = {"experiments", "data_profiles"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("e2e-store")
    run_demo(settings_for(data_dir), sweep_runs=4)
    return settings_for(data_dir)


@pytest.fixture(scope="module")
def app_url(store: Settings) -> Iterator[str]:
    with streamlit_app({"MLOPS_DATA_DIR": str(store.data_dir)}) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


def _page(browser: Browser) -> Page:
    return browser.new_page(viewport={"width": 1500, "height": 1000})


def _no_exception(page: Page) -> None:
    assert page.get_by_test_id("stException").count() == 0, page.inner_text("body")[:2000]


def test_every_page_in_the_navigation_opens_with_data(browser: Browser, app_url: str) -> None:
    page = _page(browser)
    sign_in(page, app_url, "admin", "admin-demo")
    for spec in PAGES:
        open_page(page, spec.title)
        _no_exception(page)
        main = page.get_by_test_id("stMain")
        # A page may draw its title after the script reports idle (a fragment re-runs).
        expect(main.get_by_role("heading").first).to_be_visible(timeout=30_000)
        # Every page shows the demo's models or runs; the approvals queue starts empty.
        shown = main.inner_text()
        expected = ("churn-predictor", "credit-default", "No open promotion", "No audit events")
        assert (
            any(word in shown for word in expected) or main.get_by_test_id("stDataFrame").count()
        ), spec.key
        screenshot(page, f"page-{spec.key}")
        if spec.key not in WIDE_BY_NATURE:
            assert not any(clipped_tables(page)), (spec.key, clipped_tables(page))


def test_compare_two_runs_from_a_shared_link(
    browser: Browser, app_url: str, store: Settings
) -> None:
    registry = Registry(store.tracking_uri)
    experiment = registry.experiment_by_name(training_experiment("churn-predictor"))
    runs = registry.search_runs([experiment.experiment_id], page_size=2).runs.run_id.tolist()
    page = _page(browser)
    shared_link = (
        f"{app_url}/experiments?experiments={experiment.experiment_id}&runs={','.join(runs)}"
    )
    sign_in(page, shared_link, "viewer", "viewer-demo")
    _no_exception(page)
    main = page.get_by_test_id("stMain")
    assert "the best value of each metric is highlighted" in main.inner_text()
    main.get_by_test_id("stPlotlyChart").first.locator(".scatterlayer").wait_for()
    main.get_by_role("radio", name="Parallel coordinates").click()
    wait_for_app(page)
    main.get_by_test_id("stPlotlyChart").first.locator(".parcoords").first.wait_for()
    screenshot(page, "compare-two-runs")


def _open_request_detail(page: Page) -> None:
    open_page(page, "Approvals")
    page.get_by_role("tab", name="Queue").click()
    wait_for_app(page)


def test_whole_promotion_with_four_eyes(browser: Browser, app_url: str, store: Settings) -> None:
    registry = Registry(store.tracking_uri)
    assert registry.version_by_alias("churn-predictor").version == "1"

    requester = _page(browser)
    sign_in(requester, app_url, "requester", "requester-demo")
    open_page(requester, "Approvals")
    requester.get_by_role("tab", name="Request a promotion").click()
    wait_for_app(requester)
    panel = requester.get_by_role("tabpanel", name="Request a promotion")
    panel.get_by_test_id("stSelectbox").nth(1).click()
    requester.get_by_role("option", name="v3").click()
    panel.get_by_role("textbox").fill("Better ROC AUC than the champion and fair by gender.")
    panel.get_by_role("button", name="Request promotion").click()
    wait_for_app(requester)
    _no_exception(requester)
    assert "Request #" in requester.get_by_test_id("stMain").inner_text()
    screenshot(requester, "promotion-1-requested")

    # Four eyes: the requester sees no approve button on their own request.
    _open_request_detail(requester)
    assert requester.get_by_role("button", name="Approve", exact=True).count() == 0
    requester.get_by_role("button", name="Sign out").click()
    requester.close()

    approver = _page(browser)
    sign_in(approver, app_url, "approver", "approver-demo")
    _open_request_detail(approver)
    main = approver.get_by_test_id("stMain")
    text = main.inner_text()
    assert "churn-predictor" in text and "v3" in text
    assert "gate" in text.lower()
    screenshot(approver, "promotion-2-evidence")
    # The request's metric, fairness and gate tables show every column.
    assert not any(clipped_tables(approver)), clipped_tables(approver)
    main.get_by_role("button", name="Approve", exact=True).click()
    dialog = approver.get_by_role("dialog")
    dialog.get_by_role("textbox").first.fill(
        "Evidence reviewed: metrics up, fairness within limits."
    )
    dialog.get_by_role("button", name="Confirm: Approve").click()
    wait_for_app(approver)
    _no_exception(approver)
    screenshot(approver, "promotion-3-approved")
    assert registry.version_by_alias("churn-predictor").version == "3"

    open_page(approver, "Audit log")
    audit_text = approver.get_by_test_id("stMain").inner_text().lower()
    assert "valid" in audit_text or "intact" in audit_text
    screenshot(approver, "promotion-4-audit")


def test_drift_page_shows_a_drifted_week_and_the_evidently_report(
    browser: Browser, app_url: str
) -> None:
    page = _page(browser)
    sign_in(page, app_url, "viewer", "viewer-demo")
    open_page(page, "Drift")
    main = page.get_by_test_id("stMain")
    # The newest calendar week of the demo lies in the drifted weeks 5-8.
    main.get_by_test_id("stSelectbox").filter(has_text="Window").click()
    page.get_by_role("option").nth(1).click()
    wait_for_app(page)
    _no_exception(page)
    text = main.inner_text()
    assert "monthly_charges" in text and "support_calls" in text and "contract_type" in text
    main.get_by_role("button", name="Build the full Evidently report").click()
    wait_for_app(page)
    report = main.locator("iframe").last
    report.wait_for(timeout=60_000)
    assert report.get_attribute("srcdoc") or report.get_attribute("src")
    _no_exception(page)
    screenshot(page, "drift-drifted-week")

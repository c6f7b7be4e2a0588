"""In a real Chromium against `streamlit run app.py`: an approver watches a rollout
advance on the Rollouts page, and aborts another one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from mlops_core.config import Settings, load_settings
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.rollout.progress import tick_all
from mlops_core.rollout.publish import read_publication
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.browser import chromium, open_page, screenshot, sign_in, wait_for_app
from tests.rollout_traffic import (
    SHADOW_THEN_CANARY,
    Traffic,
    approved_rollout,
    clean_registry,
    rollout_env,
)
from tests.servers import streamlit_app

pytestmark = pytest.mark.browser
CHURN = "churn-predictor"


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = rollout_env(
        demo_settings, tmp_path_factory.mktemp("rollouts-browser"), SHADOW_THEN_CANARY
    )
    settings = load_settings(env)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    registry = Registry(settings.tracking_uri)
    for model in ("credit-default", CHURN):
        clean_registry(registry, model)
        approved_rollout(settings, registry, model)
    return env


@pytest.fixture(scope="module")
def app_url(env: dict[str, str]) -> Iterator[str]:
    with streamlit_app(env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


def _pick_model(page: Page, model: str) -> None:
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=model).click()
    wait_for_app(page)


def test_an_approver_watches_a_rollout_advance_and_aborts_another(
    browser: Browser, app_url: str, env: dict[str, str]
) -> None:
    settings = load_settings(env)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    sign_in(page, app_url, "approver", "approver-demo")
    open_page(page, "Rollouts")
    _pick_model(page, "credit-default")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("is at stage 1 of 2 (shadow)")

    # The scheduler's tick, once the router has sent the shadow stage its requests.
    Traffic(settings).send(70)
    assert [r.outcome for r in tick_all(settings, model="credit-default")] == ["advanced"]
    page.get_by_role("button", name="Evaluate now").click()
    wait_for_app(page)
    expect(main).to_contain_text("is at stage 2 of 2 (canary): 25% split")
    expect(main.get_by_test_id("stPlotlyChart").first).to_be_visible()
    screenshot(page, "rollouts-advanced")

    _pick_model(page, CHURN)
    expect(main).to_contain_text("Rollout #2 of churn-predictor v3")
    page.get_by_role("textbox", name="Reason (for pause, resume, abort)").fill("wrong week")
    page.get_by_role("button", name="Abort").click()
    wait_for_app(page)
    expect(main).to_contain_text("Aborted: Rollout #2 of churn-predictor v3 is aborted")
    expect(page.get_by_role("button", name="Abort")).to_have_count(0)
    assert read_publication(Registry(settings.tracking_uri), CHURN).challenger is None
    screenshot(page, "rollouts-aborted")

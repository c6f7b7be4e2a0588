"""The Rollouts page through AppTest, as one story on a private store: a viewer sees an
approved request waiting, an approver starts it, evaluates it with traffic from the router,
pauses it (a reason is required) and aborts it."""

from __future__ import annotations

import pytest

from mlops_core.config import Settings, load_settings
from mlops_core.governance.promotion.apply import apply_refusal
from mlops_core.governance.promotion.decide import allowed_actions
from mlops_core.governance.promotion.state import get_request
from mlops_core.rollout.publish import read_publication
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, VIEWER, assert_no_exception
from tests.rollout_traffic import (
    MODEL,
    SHADOW_THEN_CANARY,
    Traffic,
    approved_request,
    clean_registry,
    rollout_env,
)
from tests.test_pages_approvals import open_page, texts


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = rollout_env(demo_settings, tmp_path_factory.mktemp("rollouts-page"), SHADOW_THEN_CANARY)
    settings = load_settings(env)
    db.upgrade(settings.db_url)
    registry = Registry(settings.tracking_uri)
    clean_registry(registry)
    approved_request(settings, registry)
    return env


def test_a_viewer_sees_the_waiting_request_without_a_start_button(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, "rollouts", VIEWER)
    assert "Request #1: credit-default v3, approved by approver" in texts(at, "markdown")
    assert "start_1" not in {b.key for b in at.button}
    assert "No rollouts yet" in texts(at, "info")


def test_the_approvals_page_offers_no_apply_of_a_request_its_rollout_promotes(
    monkeypatch, env
) -> None:
    """Approved, waiting for its rollout: the core refuses a manual apply, so the page
    offers none (both ask `apply_refusal`)."""
    settings = load_settings(env)
    request = get_request(settings, 1)
    assert request.status == "approved" and request.retryable
    assert "rollout start --request 1" in (apply_refusal(settings, request) or "")
    assert allowed_actions(settings, APPROVER, request) == []
    at = open_page(monkeypatch, env, "approvals", APPROVER)
    assert at.selectbox(key="queue_pick").value.startswith("#1 credit-default v3")
    assert "Request #1: credit-default v3" in texts(at, "subheader")
    assert not {b.key for b in at.button} & {"retry_apply_1", "approve_1", "cancel_1"}


def test_an_approver_starts_evaluates_pauses_and_aborts(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, "rollouts", APPROVER)
    at.button(key="start_1").click().run()
    assert_no_exception(at)
    assert "Started: Rollout #1 of credit-default v3 is at stage 1 of 2 (shadow)" in texts(
        at, "success"
    )
    assert "Not evaluated yet" in texts(at, "caption")

    Traffic(load_settings(env)).send(70)
    at.button(key="rollout_tick").click().run()
    assert_no_exception(at)
    assert "is at stage 2 of 2 (canary): 25% split" in texts(at, "success")
    assert at.metric[1].value == "25%"
    assert len(at.get("plotly_chart")) >= 2
    guardrails = at.dataframe[0].value
    assert set(guardrails["guardrail"]) == {"error_rate", "latency_p99_ms", "prediction_drift"}

    at.button(key="rollout_pause").click().run()
    assert "A reason is required." in texts(at, "error")
    at.text_input(key="rollout_reason").input("checking a dashboard")
    at.button(key="rollout_pause").click().run()
    assert "Paused: Rollout #1 of credit-default v3 is paused" in texts(at, "success")
    at.button(key="rollout_abort").click().run()
    assert_no_exception(at)
    assert "Aborted: Rollout #1 of credit-default v3 is aborted" in texts(at, "success")
    registry = Registry(load_settings(env).tracking_uri)
    assert read_publication(registry, MODEL).challenger is None
    assert "rollout_abort" not in {b.key for b in at.button}

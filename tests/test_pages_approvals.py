"""The approvals and audit pages, driven through Streamlit's AppTest on a private store.

The tests run in order, as one story: request, a refused and a confirmed approval, a
rollback, then the audit log of all of it.
"""

import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings, load_settings
from mlops_core.stores.registry import Registry
from tests.apptest import ADMIN, APPROVER, REQUESTER, VIEWER, assert_no_exception
from tests.test_promotion import copy_demo_env

CHURN = "churn-predictor"
PAGES = Path(__file__).resolve().parents[1] / "pages"


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return copy_demo_env(demo_settings, tmp_path_factory.mktemp("approvals-page"))


@pytest.fixture(scope="module")
def registry(env: dict[str, str]) -> Registry:
    return Registry(load_settings(env).tracking_uri)


def open_page(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    page: str,
    actor,
    tab: str | None = None,
) -> AppTest:
    """The page as `actor` opens it, on `tab` when given (Approvals draws only its open tab)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=120)
    at.session_state["actor"] = actor
    if tab is not None:
        at.session_state["approvals_tab"] = tab
    at.run()
    assert_no_exception(at)
    return at


def texts(at: AppTest, kind: str) -> str:
    """The text of all elements of a kind, Markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", " ".join(str(e.value) for e in getattr(at, kind)))


def test_requester_requests_a_promotion(monkeypatch, env) -> None:
    queue = open_page(monkeypatch, env, "approvals", REQUESTER)
    assert "No open promotion requests" in texts(queue, "info")
    # The other tabs are not drawn until they are opened.
    assert "request_model" not in {s.key for s in queue.selectbox}
    at = open_page(monkeypatch, env, "approvals", REQUESTER, tab="Request a promotion")
    assert at.text_area(key="request_reason").proto.max_chars == 5000
    at.selectbox(key="request_model").set_value(CHURN)
    at.selectbox(key="request_version").set_value("v3")
    at.text_area(key="request_reason").input("Better ROC AUC and fair by gender.")
    at.button(key="FormSubmitter:request_form-Request promotion").click().run()
    assert_no_exception(at)
    assert "Request #1 created for churn-predictor v3: gates 11 passed" in texts(at, "success")
    # The new request is open in the queue at once.
    assert at.selectbox(key="queue_pick").value.startswith("#1 churn-predictor v3")
    assert "Request #1: churn-predictor v3 → alias champion" in texts(at, "subheader")
    # Their own request: they may cancel it, not decide it.
    keys = {b.key for b in at.button}
    assert "cancel_1" in keys and "approve_1" not in keys


def test_an_approver_who_requested_is_told_why_there_is_no_approve_button(monkeypatch, env) -> None:
    both = ADMIN.__class__("requester", frozenset({"requester", "approver"}))
    at = open_page(monkeypatch, env, "approvals", both)
    assert "approve_1" not in {b.key for b in at.button}
    assert "requester requested #1 and may not decide it" in texts(at, "caption")


def test_approver_confirms_an_approval_in_a_dialog(monkeypatch, env, registry) -> None:
    at = open_page(monkeypatch, env, "approvals", APPROVER)
    assert {"approve_1", "reject_1"} <= {b.key for b in at.button}
    assert "override_1" not in {b.key for b in at.button}
    at.button(key="approve_1").click().run()
    # What would block is shown before a comment is written: nothing, here.
    assert "Every gate passes now; approving moves the alias champion." in texts(at, "success")
    # Confirming without the mandatory comment is refused with the core's message.
    at.button(key="action_confirm").click().run()
    assert_no_exception(at)
    assert "A comment is required." in texts(at, "error")
    at.text_area(key="action_comment").input("Evidence is clear.")
    at.button(key="action_confirm").click().run()
    assert_no_exception(at)
    assert "applied: champion of churn-predictor now points at v3" in texts(at, "success")
    assert registry.version_by_alias(CHURN).version == "3"
    assert "No open promotion requests" in texts(at, "info")


def test_history_shows_the_decision_and_offers_the_record(monkeypatch, env) -> None:
    # The page needs the requester or approver role, whatever the navigation shows.
    refused = open_page(monkeypatch, env, "approvals", VIEWER)
    assert "may not open the approvals page" in texts(refused, "error")
    assert not refused.get("selectbox")
    asking = open_page(monkeypatch, env, "approvals", APPROVER, tab="Request a promotion")
    assert "Requesting a promotion needs the requester role." in texts(asking, "info")
    at = open_page(monkeypatch, env, "approvals", APPROVER, tab="History")
    history = at.selectbox(key="history_pick")
    assert history.options == ["#1 churn-predictor v3: applied — requester"]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Decision record (Markdown)", "Decision record (HTML)"]


def test_rollback_through_the_page(monkeypatch, env, registry) -> None:
    at = open_page(monkeypatch, env, "approvals", ADMIN, tab="Roll back")
    at.selectbox(key="rollback_model").set_value(CHURN).run()
    at.button(key=f"rollback_{CHURN}").click().run()
    at.text_area(key="rollback_reason").input("Incident 4711.")
    at.button(key="rollback_confirm").click().run()
    assert_no_exception(at)
    assert "points at v1 again" in texts(at, "success")
    assert registry.version_by_alias(CHURN).version == "1"


def test_audit_page_filters_verifies_and_exports(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, "audit", VIEWER)
    # The digests of the demo's six check reports (the copy carries them), then policy
    # read, request, gates at request, gates at approval, approve, apply_started, apply,
    # rollback
    assert texts(at, "success").startswith("Audit chain intact: 14 events")
    assert len(at.dataframe[0].value) == 14
    # Long JSON details and hashes are shown for a picked event, not as table columns.
    assert "details" not in at.dataframe[0].value and "hash" not in at.dataframe[0].value
    assert "Pick an event in the table" in texts(at, "caption")
    at.selectbox(key="audit_action").set_value("rollback").run()
    frame = at.dataframe[0].value
    assert list(frame["action"]) == ["rollback"] and list(frame["reason"]) == ["Incident 4711."]
    assert [b.proto.label for b in at.get("download_button")] == ["Export as CSV"]

"""The drift and data profile pages with AppTest on a copy of the demo store."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings
from mlops_core.evidence.monitoring import drift_history
from mlops_core.identity import Actor
from mlops_core.stores.registry import Registry
from tests.apptest import APPROVER, VIEWER, assert_no_exception, shown
from tests.test_monitoring import copy_store

PAGES = Path(__file__).resolve().parents[1] / "pages"
CHURN = "churn-predictor"


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return copy_store(demo_settings, tmp_path_factory.mktemp("pages-store"))


@pytest.fixture(scope="module")
def reference(store: Settings) -> pd.DataFrame:
    registry = Registry(store.tracking_uri)
    run_id = registry.version_by_alias(CHURN).run_id
    return pd.read_parquet(
        registry.client.download_artifacts(run_id, "reference/reference.parquet")
    )


def open_page(
    monkeypatch: pytest.MonkeyPatch, store: Settings, page: str, actor: Actor = VIEWER
) -> AppTest:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(store.data_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / page), default_timeout=120)
    at.session_state["actor"] = actor
    at.run()
    assert_no_exception(at)
    return at


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio[0].set_value("Upload a file").run()
    at.file_uploader[0].upload(name, data, "text/csv").run()
    assert_no_exception(at)
    return at


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(shown(element) for element in at.get(kind))


# --- drift ----------------------------------------------------------------------------------


def test_a_viewer_may_look_at_drift_but_not_log_it(monkeypatch, store) -> None:
    at = open_page(monkeypatch, store, "drift.py")
    log = next(b for b in at.button if b.label == "Log this check to MLflow")
    assert log.disabled and "requester or approver role" in log.help


def test_drift_of_the_latest_window_logged_and_read_back(monkeypatch, store) -> None:
    at = open_page(monkeypatch, store, "drift.py", APPROVER)
    assert shown(at.success[0]).startswith("3 of 8 columns drifted (38%)")
    assert "policy's drift gate passes" in shown(at.success[0])
    table = at.dataframe[0].value
    assert set(table["column"][:3]) == {"monthly_charges", "support_calls", "contract_type"}
    assert "timestamp" not in set(table["column"]) and "score" not in set(table["column"])
    # The rows actually compared, not the sample cap the data never reached.
    compared = re.search(
        r"Compared: ([\d,]+) reference and ([\d,]+) current rows", texts(at, "caption")
    )
    assert compared and "(at most 100,000 per side)" in texts(at, "caption")
    assert all(0 < int(n.replace(",", "")) < 100_000 for n in compared.groups())
    assert "No drift check of churn-predictor has been logged yet" in texts(at, "info")
    assert len(at.get("plotly_chart")) == 1  # the distribution; no history yet

    at.number_input(key="drift_report_rows").set_value(300).run()
    log = next(b for b in at.button if b.label == "Log this check to MLflow")
    log.click().run()
    assert_no_exception(at)
    assert "Logged as run" in texts(at, "success")
    history = drift_history(Registry(store.tracking_uri), CHURN)
    assert len(history) == 1 and history["drift_share"].iloc[0] == pytest.approx(3 / 8)
    # Distribution, share per window, score per column.
    assert len(at.get("plotly_chart")) == 3


def test_an_early_week_has_no_drift_and_shows_the_report(monkeypatch, store) -> None:
    at = open_page(monkeypatch, store, "drift.py")
    window = at.selectbox(key="drift_window")
    window.select_index(len(window.options) - 1).run()
    assert shown(at.success[0]).startswith("0 of 8 columns drifted (0%)")
    at.selectbox(key="drift_column").set_value("contract_type").run()
    at.number_input(key="drift_report_rows").set_value(300).run()
    next(b for b in at.button if b.label == "Build the full Evidently report").click().run()
    assert_no_exception(at)
    assert "Built from 300 reference and 300 current rows." in texts(at, "caption")
    assert at.get("download_button") and at.get("iframe")


def test_an_uploaded_file_is_compared_but_not_logged(monkeypatch, store, reference) -> None:
    at = open_page(monkeypatch, store, "drift.py")
    drifted = reference.assign(usage_gb=reference.usage_gb * 4)
    upload(at, "upload.csv", csv_bytes(drifted))
    assert at.dataframe[0].value["column"].iloc[0] == "usage_gb"
    assert "Current: uploaded file upload.csv (all 4,000 rows)" in texts(at, "caption")
    log = next(b for b in at.button if b.label == "Log this check to MLflow")
    assert log.disabled


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("binary.csv", b"\x00\x01\x02 not a table", "not a CSV or Parquet file"),
        ("empty.csv", b"", "empty"),
        ("fake.parquet", b"a,b\n1,2\n", "named like a Parquet file but is not one"),
        ("other.csv", b"a,b\n1,2\n3,4\n", "no column in common"),
    ],
)
def test_a_bad_upload_is_a_clear_message(monkeypatch, store, name, data, message) -> None:
    at = open_page(monkeypatch, store, "drift.py")
    upload(at, name, data)
    assert message in texts(at, "error")


# --- data profiles --------------------------------------------------------------------------


def test_profile_of_the_latest_window(monkeypatch, store) -> None:
    at = open_page(monkeypatch, store, "data_profiles.py")
    assert shown(at.success[0]).startswith("Fresh: newest row is")
    assert shown(at.success[1]).startswith("The current data matches the signature of v1")
    profile = at.dataframe[0].value
    assert profile.loc["monthly_charges", "type (current)"] == "numeric"
    assert (
        profile.loc["monthly_charges", "mean (current)"]
        > (profile.loc["monthly_charges", "mean (reference)"])
    )
    assert "month-to-month" in profile.loc["contract_type", "top_categories (reference)"]
    assert len(at.get("plotly_chart")) == 1
    at.number_input(key="profile_summary_rows").set_value(300).run()
    at.button[0].click().run()
    assert_no_exception(at)
    assert "DataSummaryPreset: 300 current and 300 reference rows" in texts(at, "caption")
    assert at.get("iframe")


def test_profile_of_an_upload_names_each_schema_problem(monkeypatch, store, reference) -> None:
    at = open_page(monkeypatch, store, "data_profiles.py")
    spoiled = reference.drop(columns=["region"]).assign(
        monthly_charges="lots", extra=1, usage_gb=reference.usage_gb.where(reference.index > 5)
    )
    upload(at, "spoiled.csv", csv_bytes(spoiled))
    assert "problem(s) against the signature of v1" in texts(at, "error")
    problems = at.dataframe[0].value.set_index("column")["problem"].to_dict()
    assert {"region", "monthly_charges", "extra"} <= set(problems)
    assert "has no 'timestamp' column" in texts(at, "caption")

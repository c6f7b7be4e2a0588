"""Running the Streamlit app in-process with AppTest against a given data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app_test(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> AppTest:
    """A fresh app for these settings; caches are process-wide, so they are cleared."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(APP, default_timeout=120)


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]

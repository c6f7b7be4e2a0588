"""Running the Streamlit app in-process with AppTest against a given data folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.identity import Actor

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def actor(name: str, *roles: str) -> Actor:
    return Actor(username=name, roles=frozenset(roles or (name,)), auth_method="local")


ADMIN = actor("admin")
VIEWER = actor("viewer")
REQUESTER = actor("requester")
APPROVER = actor("approver")


def app_test(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], as_actor: Actor | None = ADMIN
) -> AppTest:
    """A fresh app for these settings, signed in as `as_actor` (None: nobody signed in).

    Streamlit's caches are process-wide, so they are cleared for each app.
    """
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    if as_actor is not None:
        at.session_state["actor"] = as_actor
    return at


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def shown(element) -> str:
    """What a person reads in a Markdown element: the text without its escaping backslashes."""
    return re.sub(r"\\(.)", r"\1", str(element.value))

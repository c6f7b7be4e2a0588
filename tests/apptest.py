"""Running the Streamlit app in-process with AppTest against a given data folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.identity import Actor

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = Path(__file__).resolve().parents[1] / "pages"


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


def open_page(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], page: str, **query: str | list[str]
) -> AppTest:
    """A new visitor opening the page's URL with this query string."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / page), default_timeout=120)
    at.session_state["actor"] = VIEWER
    at.query_params.update(query)
    return at.run()


def runs_table(at: AppTest) -> AppTest:
    return next(d for d in at.dataframe if (d.key or "").startswith("runs_"))


def tick(at: AppTest, rows: list[int]) -> AppTest:
    key = runs_table(at).key
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()

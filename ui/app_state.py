"""What every page shares: settings, the cached registry and panel database, error display."""

from __future__ import annotations

import gc
import importlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import streamlit as st

from mlops_core.config import Settings, load_settings
from mlops_core.errors import MlopsError
from mlops_core.governance.overview import ModelOverview, model_overview
from mlops_core.policy import load_policy
from mlops_core.redaction import redact
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from ui.text import plain

T = TypeVar("T")
REGISTRY_TTL_SECONDS = 30
# What costs seconds to import on a small machine: pandas' Styler (comparisons), the
# profile and drift modules. The server loads them once in the background when it starts,
# in the order pages need them, so the first visitor of those pages does not wait.
HEAVY_MODULES = (
    "ui.comparison_view",
    "mlops_core.evidence.profiling",
    "mlops_core.evidence.drift",
    "ui.reports",
)
# Evidently is needed only when someone asks for its report, and importing it holds the
# interpreter for seconds: a page opened meanwhile waited for it (first Data profiles
# 1.4 s instead of 0.3 s). It is loaded once no run of app.py has been in progress for
# QUIET_SECONDS (a fragment's rerun is not marked: it may still meet the import, once).
WHEN_QUIET_MODULES = ("evidently.presets",)
QUIET_SECONDS = 3.0


class _Activity:
    """Script runs in progress and when the last one ended, for background work that must
    not compete with a person's click."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._last_end = time.monotonic()

    @contextmanager
    def run(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._last_end = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        with self._lock:
            return self._running == 0 and time.monotonic() - self._last_end >= seconds


_activity = _Activity()


def script_run() -> AbstractContextManager[None]:
    """Wraps each run of the app's script (app.py): background warm-up waits for quiet."""
    return _activity.run()


def or_stop(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call the core; a problem a person can fix ends the page with its message, not a trace."""
    try:
        return fn(*args, **kwargs)
    except MlopsError as exc:
        st.error(plain(redact(str(exc))))
        st.stop()


@st.cache_resource
def _settings() -> Settings:
    return load_settings()


def settings() -> Settings:
    return or_stop(_settings)


@st.cache_resource
def _schema_ready(migrate_url: str, _current: Settings) -> bool:
    # Cached by the URL migrations run on; the settings themselves are not hashed.
    db.migrate(_current)
    return True


def ensure_schema(current: Settings) -> None:
    or_stop(_schema_ready, current.migrate_url, current)


def _warm_up() -> None:
    for module in HEAVY_MODULES:
        importlib.import_module(module)
    freeze_long_lived_objects()
    while not _activity.quiet_for(QUIET_SECONDS):
        time.sleep(QUIET_SECONDS / 4)
    for module in WHEN_QUIET_MODULES:
        importlib.import_module(module)
    freeze_long_lived_objects()


def freeze_long_lived_objects() -> None:
    """Exempt what is loaded by now (modules, classes, the libraries' tables) from the
    cyclic garbage collector.

    Streamlit collects every generation after each script run (`runner.postScriptGC`), and
    with MLflow, scikit-learn and Evidently loaded that walks half a million objects: 0.25 s
    added to every click, twice for an action that reruns the page. Those objects live as
    long as the server, so scanning them finds nothing; freezing them keeps the collection
    after each run for what the runs create.
    """
    gc.collect()
    gc.freeze()


@st.cache_resource
def warm_heavy_imports() -> threading.Thread:
    """Once per server process: import HEAVY_MODULES in a daemon thread, then
    WHEN_QUIET_MODULES once the server is quiet (Python's import lock makes a page that
    needs one meanwhile wait for it, never import it twice)."""
    thread = threading.Thread(target=_warm_up, name="warm-imports", daemon=True)
    thread.start()
    return thread


@st.cache_resource
def registry(tracking_uri: str) -> Registry:
    return Registry(tracking_uri)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the model registry…")
def _overview(tracking_uri: str, _current: Settings, policy_sha: str | None) -> list[ModelOverview]:
    # Keyed by the policy's digest too: an edited policy shows at once.
    return model_overview(registry(tracking_uri), load_policy(_current.policy_file))


def cached_overview(current: Settings) -> list[ModelOverview]:
    policy = load_policy(current.policy_file)
    return _overview(current.tracking_uri, current, policy.sha256)


def refresh_control() -> None:
    """Registry reads are cached briefly; this lets a person see a change at once."""
    if st.sidebar.button("Refresh registry data", help="Registry reads are cached for 30 s."):
        st.cache_data.clear()
        st.rerun()

"""Shared fixtures: real stores only. The demo scenario is seeded once per test session."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_core.config import Settings, load_settings
from mlops_core.demo.scenario import run_demo
from tests.pg import fresh_pg_url
from tests.team_store import TeamStore, build_team_store

# Small sweeps keep the suite fast; every other part of the scenario is the real one.
TEST_SWEEP_RUNS = 6


def settings_for(data_dir: Path, **overrides: str) -> Settings:
    return load_settings({"MLOPS_DATA_DIR": str(data_dir), **overrides})


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data folder holding the seeded demo: MLflow on SQLite, inference log, panel DB,
    demo accounts and the example policy."""
    data_dir = tmp_path_factory.mktemp("demo-store")
    run_demo(settings_for(data_dir), sweep_runs=TEST_SWEEP_RUNS)
    # Loaded again so that the policy file the demo installed is picked up.
    return settings_for(data_dir)


@pytest.fixture(scope="session")
def demo_env(demo_settings: Settings) -> dict[str, str]:
    """Environment variables that point a process (app, CLI) at the seeded demo store."""
    return {"MLOPS_DATA_DIR": str(demo_settings.data_dir)}


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def panel_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The panel database on both engines the panel supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'panel.db'}"
    else:
        with fresh_pg_url() as url:
            yield url


SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where this run's browser tests left their screenshots, so CI logs point at them."""
    from tests.browser import SCREENSHOTS

    started = SESSION_STARTED
    shots = [p for p in SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= started]
    if shots:
        terminalreporter.write_line(f"Browser screenshots ({len(shots)}): {SCREENSHOTS}")


@pytest.fixture(scope="session")
def team_store(tmp_path_factory: pytest.TempPathFactory) -> TeamStore:
    """A team's own MLflow store, built with stock MLflow and scikit-learn (tests/team_store.py)."""
    return build_team_store(tmp_path_factory.mktemp("team-store"))


@pytest.fixture
def team_settings(team_store: TeamStore, tmp_path: Path) -> Settings:
    """The panel with an empty data folder and no policy, pointed at a private copy of the
    team's registry (artifacts stay where the team logged them)."""
    shutil.copy(team_store.folder / "mlflow.db", tmp_path / "team-mlflow.db")
    return settings_for(
        tmp_path / "panel", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'team-mlflow.db'}"
    )

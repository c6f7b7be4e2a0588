"""Fast page tests with AppTest: every page in the navigation renders from real stores."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.apptest import app_test, assert_no_exception, shown

ROOT = Path(__file__).resolve().parents[1]


def test_overview_lists_models_with_their_champion(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = app_test(monkeypatch, demo_env).run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    assert list(table.model) == ["churn-predictor", "credit-default"]
    assert list(table.champion) == ["v1 (alias champion)", "v1 (alias champion)"]
    assert "stages" not in table  # no demo model has one
    assert list(table.drift) == ["no drift (38% of columns)", "no drift (33% of columns)"]


def test_overview_lists_the_running_rollout_with_a_link_to_its_page(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = app_test(monkeypatch, demo_env).run()
    assert_no_exception(at)
    rollouts = at.dataframe[1].value
    assert rollouts.to_dict("records")[0] | {"evaluated": None} == {
        "model": "credit-default",
        "version": "v3",
        "stage": "canary-10 (1 of 2)",
        "mode": "split",
        "traffic": "10%",
        "status": "running",
        "last evaluation": "not evaluated yet",
        "evaluated": None,
    }
    assert len(rollouts) == 1
    links = [e for e in at.get("page_link") if "Rollouts page" in e.proto.label]
    assert links and "rollouts" in links[0].proto.page


def test_every_page_in_the_navigation_renders(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = app_test(monkeypatch, demo_env).run()
    pages = [p for p in Path("pages").glob("*.py")]
    assert pages
    for page in pages:
        at.switch_page(str(page)).run()
        assert_no_exception(at)
        assert not at.error, (page, [shown(e) for e in at.error])


def test_empty_store_explains_how_to_load_the_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = app_test(monkeypatch, {"MLOPS_DATA_DIR": str(tmp_path)}).run()
    assert_no_exception(at)
    assert "python -m mlops_core demo" in shown(at.info[0])


def test_unreachable_tracking_server_shows_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    at = app_test(monkeypatch, env).run()
    assert_no_exception(at)
    assert "Cannot reach the MLflow tracking server" in shown(at.error[0])


def test_invalid_setting_is_named_on_the_page(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_DB_URL": "nonsense::"}
    at = app_test(monkeypatch, env).run()
    assert_no_exception(at)
    assert "MLOPS_DB_URL" in shown(at.error[0])


def test_the_server_loads_the_heavy_page_modules_at_once_and_evidently_once_quiet() -> None:
    # A fresh interpreter, as a server that just started: nothing of Evidently loaded yet.
    script = (
        "import sys, time\n"
        "from ui.app_state import (\n"
        "    HEAVY_MODULES, QUIET_SECONDS, script_run, warm_heavy_imports)\n"
        "assert 'evidently' not in sys.modules\n"
        "with script_run():\n"
        "    thread = warm_heavy_imports()\n"
        "    assert warm_heavy_imports() is thread\n"
        "    deadline = time.monotonic() + 120\n"
        "    while not all(m in sys.modules for m in HEAVY_MODULES):\n"
        "        assert time.monotonic() < deadline, HEAVY_MODULES\n"
        "        time.sleep(0.1)\n"
        # Importing Evidently would hold the interpreter while a person waits for a page.
        "    time.sleep(QUIET_SECONDS * 2)\n"
        "    assert 'evidently' not in sys.modules, 'loaded during a script run'\n"
        "ended = time.monotonic()\n"
        "thread.join(120)\n"
        "assert 'evidently' in sys.modules\n"
        "assert time.monotonic() - ended >= QUIET_SECONDS\n"
        # What is loaded by then lives as long as the server: Streamlit's collection after
        # each script run skips it, yet still frees the cycles a run leaves behind.
        "import gc, weakref\n"
        "assert gc.get_freeze_count() > 100_000, gc.get_freeze_count()\n"
        "class Node: pass\n"
        "node = Node(); node.me = node; alive = weakref.ref(node); del node\n"
        "gc.collect(2)\n"
        "assert alive() is None\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]

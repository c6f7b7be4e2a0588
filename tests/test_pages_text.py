"""Names from MLflow and text people type are shown as text, never as Markdown.

A model registered as `**bold** ![x](img.png)` must not turn bold or load an image in the
Overview's warning, and a malformed filter is shown as code, not echoed as a link.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.apptest import VIEWER, app_test, assert_no_exception
from ui.text import plain

HOSTILE_NAME = "**bold** ![x](img.png) [click](evil.example) <img src=x onerror=alert(1)>"


def test_plain_escapes_every_markdown_construct() -> None:
    escaped = plain(HOSTILE_NAME)
    for construct in ("\\*\\*", "\\!\\[", "\\]\\(", "\\<img"):
        assert construct in escaped
    # Removing the escapes gives the name back: the person reads what MLflow holds.
    assert escaped.replace("\\", "") == HOSTILE_NAME


@pytest.fixture
def hostile_store(tmp_path: Path) -> dict[str, str]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model(HOSTILE_NAME)
    return {"MLOPS_DATA_DIR": str(tmp_path)}


def test_a_model_name_with_markdown_is_shown_as_text_on_the_overview(
    monkeypatch: pytest.MonkeyPatch, hostile_store: dict[str, str]
) -> None:
    at = app_test(monkeypatch, hostile_store, VIEWER).run()
    assert_no_exception(at)
    warnings = [w.value for w in at.warning]
    assert any(plain(HOSTILE_NAME) in w for w in warnings), warnings
    assert not any(HOSTILE_NAME in w for w in warnings)


def test_a_malformed_filter_is_shown_as_code(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = app_test(monkeypatch, demo_env, VIEWER)
    at.switch_page("pages/experiments.py").run()
    typed = "metrics.x >>> [a](http://evil.example)"
    at.text_input(key="filter").set_value(typed).run()
    assert_no_exception(at)
    assert any("not valid" in e.value for e in at.error)
    assert not any("evil.example" in e.value for e in at.error)
    assert any("evil.example" in c.value for c in at.code)


def test_a_megabyte_description_is_shown_as_a_bounded_preview(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    huge = "A long model card. " * 55_000
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model("card-model", description=huge)
    at = app_test(monkeypatch, {"MLOPS_DATA_DIR": str(tmp_path)}, VIEWER)
    at.switch_page("pages/models.py").run()
    assert_no_exception(at)
    assert len(huge) > 1_000_000
    shown = [m.value for m in at.markdown if "model card" in m.value]
    assert shown and max(len(text) for text in shown) < 6_000
    cell = at.dataframe[0].value.loc[0, "description"]
    assert len(cell) < 400 and cell.endswith(f"({len(huge):,} characters)")
    assert at.get("download_button")

"""The experiments, models and overview pages with AppTest on a team's own MLflow store."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings
from mlops_core.evidence.run_tree import CHILD_MARK
from tests.apptest import (
    ADMIN,
    VIEWER,
    app_test,
    assert_no_exception,
    open_page,
    runs_table,
    tick,
)
from tests.team_store import LONG_PARAM, TeamStore
from ui.comparison_view import MISSING
from ui.navigation import PAGES as NAVIGATION
from ui.navigation import PageSpec


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table with these columns (AppTest does not expose a table's key)."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def facts(at: AppTest, row: str) -> pd.Series:
    """A two-column table of facts about a version, by the label of one of its rows."""
    return next(
        d.value.set_index("")["value"]
        for d in at.dataframe
        if "" in d.value.columns and row in set(d.value[""])
    )


def displayed(at: AppTest, *columns: str) -> pd.DataFrame:
    """What a person reads in a styled table: its display values, not the numbers behind."""
    element = next(d for d in at.dataframe if set(columns) <= set(d.value.columns))
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_pandas()


@pytest.fixture
def team_env(team_settings: Settings) -> dict[str, str]:
    return {
        "MLOPS_DATA_DIR": str(team_settings.data_dir),
        "MLFLOW_TRACKING_URI": team_settings.tracking_uri,
    }


def test_a_sweep_nests_under_its_parent_and_the_parent_compares_with_its_best_child(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str], team_store: TeamStore
) -> None:
    at = open_page(monkeypatch, team_env, "experiments.py", exp="team/churn")
    assert_no_exception(at)
    runs = runs_table(at).value.set_index("run_id")
    assert runs.loc[team_store.sweep_parent_run_id, "children"] == 4
    assert set(runs.loc[list(team_store.sweep_child_run_ids), "parent"]) == {"lr-sweep"}
    failed = runs.loc[team_store.failed_run_id]
    assert failed["status"] == "FAILED" and len(failed["params.feature_list"]) < 250
    assert len(LONG_PARAM) > 2_000

    query = {"exp": "team/churn", "top": "true", "sort": "metrics.mean_test_score"}
    at = open_page(monkeypatch, team_env, "experiments.py", **query)
    assert_no_exception(at)
    top = runs_table(at).value
    assert not set(top["run_id"]) & set(team_store.sweep_child_run_ids)
    parents = next(m for m in at.multiselect if m.label == "List the children of")
    parents.set_value([team_store.sweep_parent_run_id]).run()
    assert_no_exception(at)
    nested = runs_table(at).value
    ids = nested["run_id"].tolist()
    parent_row = ids.index(team_store.sweep_parent_run_id)
    best_row = parent_row + 1
    assert nested["run_name"].iloc[best_row].startswith(CHILD_MARK)
    assert nested["metrics.mean_test_score"].iloc[best_row] == (
        nested["metrics.mean_test_score"].max()
    )

    at = tick(at, [parent_row, best_row])
    assert_no_exception(at)
    assert at.query_params["runs"] == f"{ids[parent_row]},{ids[best_row]}"
    metrics = displayed(at, "metric", "better").set_index("metric")
    parent, child = metrics.columns[-2:]
    # The parent logged no mean_test_score, the child no best_cv_score: shown as missing.
    assert metrics.loc["mean_test_score", [parent, child]].eq(MISSING).tolist() == [True, False]
    assert metrics.loc["best_cv_score", [parent, child]].eq(MISSING).tolist() == [False, True]
    assert len(at.get("plotly_chart")) == 1


def test_mlflow_system_tags_can_be_shown_as_columns(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str], team_store: TeamStore
) -> None:
    at = open_page(monkeypatch, team_env, "experiments.py", exp="team/churn")
    tags = at.multiselect(key="cols_tags")
    assert {"mlflow.parentRunId", "mlflow.user", "mlflow.source.name", "mlflow.runName"} <= set(
        tags.options
    )
    tags.set_value(["mlflow.parentRunId", "mlflow.user"]).run()
    assert_no_exception(at)
    runs = runs_table(at).value.set_index("run_id")
    child = team_store.sweep_child_run_ids[0]
    assert runs.loc[child, "tags.mlflow.parentRunId"] == team_store.sweep_parent_run_id
    assert runs["tags.mlflow.user"].notna().all()


def test_a_hostile_description_renders_as_markdown_without_its_html(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str], team_settings: Settings
) -> None:
    MlflowClient(team_settings.tracking_uri).update_model_version(
        "team-churn", "2", description="Candidate <img src=x onerror=alert(2)> **GBM**"
    )
    at = open_page(monkeypatch, team_env, "models.py", model="team-churn", version="v2")
    assert_no_exception(at)
    markdown = [m.value for m in at.markdown]
    assert any(m.startswith("# Churn model") and "&lt;script&gt;" in m for m in markdown)
    assert any("&lt;img src=x onerror=alert(2)&gt; **GBM**" in m for m in markdown)
    rendered = [e.value for kind in ("markdown", "caption", "text") for e in at.get(kind)]
    assert not any("<script" in text or "<img" in text for text in rendered)


def test_lineage_shows_the_logged_model_tags_and_a_link_to_the_source_run(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str], team_store: TeamStore
) -> None:
    at = open_page(monkeypatch, team_env, "models.py", model="team-churn", version="v1")
    assert_no_exception(at)
    logged = facts(at, "flavors")
    assert logged["id"].startswith("m-") and logged["source run"] == team_store.churn_v1_run_id
    assert "sklearn" in logged["flavors"] and logged["signature"] == "yes"
    assert "MLmodel" in set(table(at, "file")["file"])
    assert "roc_auc" in set(table(at, "metric", "step", "dataset")["metric"])
    assert table(at, "version tag").values.tolist() == [["validated_by", "qa-team"]]
    assert facts(at, "model source")["model source"] == f"models:/{logged['id']}"
    link = next(m.value for m in at.markdown if "Open the source run" in m.value)
    assert "experiments?exp=team%2Fchurn" in link and team_store.churn_v1_run_id in link
    assert any("model's files are on the logged model" in c.value for c in at.caption)


def test_stages_on_the_models_page_and_the_overview(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str]
) -> None:
    at = open_page(monkeypatch, team_env, "models.py", model="team-legacy-fraud", version="v1")
    assert_no_exception(at)
    models = table(at, "model", "stages").set_index("model")
    assert models.loc["team-legacy-fraud", "stages"] == "Production: v1 · Staging: v2"
    assert table(at, "version", "stage")["stage"].tolist() == ["Staging", "Production"]
    assert facts(at, "model source")["stage"] == "Production"

    at = app_test(monkeypatch, team_env, VIEWER).run()
    assert_no_exception(at)
    overview = at.dataframe[0].value.set_index("model")
    assert overview.loc["team-legacy-fraud", "stages"] == "Production: v1 · Staging: v2"


@pytest.mark.parametrize("spec", NAVIGATION, ids=lambda spec: spec.key)
def test_every_page_opens_on_a_store_the_panel_did_not_create(
    monkeypatch: pytest.MonkeyPatch, team_env: dict[str, str], spec: PageSpec
) -> None:
    """An admin, so that every page lets them in; no policy, so nothing is promotable."""
    at = app_test(monkeypatch, team_env, ADMIN).run()
    at.switch_page(spec.file).run()
    assert_no_exception(at)
    shown_text = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info])
    assert at.title and at.title[0].value == spec.title
    if spec.key == "overview":
        assert "No policy covers" in " ".join(str(w.value) for w in at.warning)
    assert "Traceback" not in shown_text

"""The experiments and models pages with AppTest on the seeded demo store."""

import pytest

from mlops_core.config import Settings
from mlops_core.demo.scenario import training_experiment
from mlops_core.stores.registry import Registry
from tests.apptest import assert_no_exception, open_page, runs_table, shown, tick

CHURN = training_experiment("churn-predictor")
CREDIT = training_experiment("credit-default")


def test_ticking_runs_compares_them_and_puts_them_in_the_url(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = open_page(monkeypatch, demo_env, "experiments.py", exp=CHURN)
    assert_no_exception(at)
    runs = runs_table(at).value
    assert len(runs) == 9 and "metrics.roc_auc" in runs.columns
    assert "Tick 2 to 10 runs" in shown(at.info[0])

    at = tick(at, [0, 2])
    assert_no_exception(at)
    chosen = runs["run_id"].iloc[[0, 2]].tolist()
    assert at.query_params["runs"] == ",".join(chosen)
    metrics = at.dataframe[1].value
    assert list(metrics.columns[:2]) == ["metric", "better"] and len(metrics.columns) == 4
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download the comparison (CSV)"
    assert len(at.get("plotly_chart")) == 1


def test_a_shared_link_opens_the_same_comparison(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str], demo_settings: Settings
) -> None:
    registry = Registry(demo_settings.tracking_uri)
    experiment = registry.experiment_by_name(CHURN).experiment_id
    boosted = registry.search_runs([experiment], "params.model = 'gradient_boosting'").runs
    chosen = boosted["run_id"].tolist()
    at = open_page(
        monkeypatch, demo_env, "experiments.py", exp=CHURN, runs=",".join(chosen), diff="true"
    )
    assert_no_exception(at)
    assert at.toggle(key="diff").value is True
    params = at.dataframe[2].value
    # Only differences: both runs are gradient boosting, so `model` is left out.
    assert "model" not in set(params["param"]) and "learning_rate" in set(params["param"])
    shown = runs_table(at).value["run_id"].tolist()
    table_state = at.session_state[runs_table(at).key]
    assert sorted(shown[row] for row in table_state["selection"]["rows"]) == sorted(chosen)


def test_a_malformed_filter_shows_mlflows_reason(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = open_page(monkeypatch, demo_env, "experiments.py", exp=CHURN, filter="metrics.x >> 1")
    assert_no_exception(at)
    assert "This filter is not valid" in shown(at.error[0])
    assert "Invalid comparator '>>'" in at.code[0].value


def test_server_side_sort_pages_and_the_limit_of_ten(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    query = {"exp": [CHURN, CREDIT], "size": "10", "sort": "metrics.roc_auc"}
    at = open_page(monkeypatch, demo_env, "experiments.py", **query)
    first = runs_table(at).value
    assert len(first) == 10
    assert first["metrics.roc_auc"].is_monotonic_decreasing

    at.button(key="next_page").click().run()
    assert_no_exception(at)
    second = runs_table(at).value
    assert len(second) == 8 and set(first.run_id).isdisjoint(second.run_id)
    assert second["metrics.roc_auc"].max() <= first["metrics.roc_auc"].min()

    at = tick(at, list(range(8)))
    at.button(key="previous_page").click().run()
    at = tick(at, list(range(10)))
    assert_no_exception(at)
    assert "At most 10 runs can be compared; 8 more were not added." in shown(at.warning[0])
    assert len(at.query_params["runs"].split(",")) == 10


def test_models_page_lists_models_and_judges_a_candidate(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    at = open_page(monkeypatch, demo_env, "models.py")
    assert_no_exception(at)
    models = at.dataframe[0].value
    assert models["model"].tolist() == ["churn-predictor", "credit-default"]
    assert models["champion"].tolist() == ["v1 (alias champion)"] * 2
    assert any(m.value.startswith("Predicts which telecom customers") for m in at.markdown)
    # The newest version that is not the champion is the default candidate.
    assert at.selectbox(key="candidate").value == "3"
    assert shown(at.success[0]) == "Every metric the policy gates passes."
    deltas = next(d.value for d in at.dataframe if "passes" in d.value.columns)
    assert deltas.set_index("metric").loc["roc_auc", "passes"]


def test_models_page_opens_a_shared_version_comparison(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str]
) -> None:
    query = {"model": "credit-default", "candidate": "v2", "versions": ["v1", "v3"]}
    at = open_page(monkeypatch, demo_env, "models.py", **query)
    assert_no_exception(at)
    assert at.selectbox(key="model").value == "credit-default"
    assert at.selectbox(key="candidate").value == "2"
    assert at.multiselect(key="versions").value == ["1", "3"]
    metrics = next(d.value for d in at.dataframe if "better" in d.value.columns)
    assert list(metrics.columns) == ["metric", "better", "v1", "v3"]


def test_the_comparison_draws_the_chart_the_reader_picks(
    monkeypatch: pytest.MonkeyPatch, demo_env: dict[str, str], demo_settings: Settings
) -> None:
    registry = Registry(demo_settings.tracking_uri)
    experiment = registry.experiment_by_name(CHURN).experiment_id
    runs = registry.search_runs([experiment], page_size=3).runs["run_id"].tolist()
    at = open_page(monkeypatch, demo_env, "experiments.py", exp=CHURN, runs=",".join(runs))
    assert_no_exception(at)
    # One chart at a time, the metric history first.
    assert at.segmented_control(key="cmp_chart").value == "Metric history"
    (chart,) = at.get("plotly_chart")
    assert '"type":"scatter"' in chart.proto.spec.replace(" ", "")

    at = at.segmented_control(key="cmp_chart").set_value("Parallel coordinates").run()
    assert_no_exception(at)
    (chart,) = at.get("plotly_chart")
    assert '"type":"parcoords"' in chart.proto.spec.replace(" ", "")
    assert len(at.multiselect(key="cmp_axes").value) >= 2

    at = at.segmented_control(key="cmp_chart").set_value("Scatter").run()
    assert_no_exception(at)
    assert len(at.get("plotly_chart")) == 1 and at.selectbox(key="cmp_x").value

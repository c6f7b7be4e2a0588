"""The fairness page with AppTest on the seeded demo store and its stored evidence."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mlops_core.config import Settings
from mlops_core.demo.evidence import seed_fairness_evidence
from mlops_core.policy import EXAMPLE_POLICY
from tests.apptest import APPROVER, VIEWER, assert_no_exception, shown

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "fairness.py")
RECOMPUTE = "Recompute from the evaluation set"


@pytest.fixture(scope="module")
def env(demo_settings: Settings, demo_env: dict[str, str]) -> dict[str, str]:
    seed_fairness_evidence(demo_settings, APPROVER)
    return demo_env


def open_page(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **query: str) -> AppTest:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["actor"] = VIEWER
    at.query_params.update(query)
    at.run()
    assert_no_exception(at)
    return at


def captions(at: AppTest) -> str:
    return "\n".join(shown(c) for c in at.caption)


def test_newest_version_shows_stored_evidence_against_the_champion(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env)
    assert shown(at.success[0]) == "churn-predictor v3: fairness passes the policy's thresholds."
    assert "Source: stored evidence: fairness/report.json of run" in captions(at)
    assert shown(at.info[0]).startswith("v3 against champion v1: roc_auc")
    assert [t.label for t in at.tabs] == ["gender"]
    # Comparison, disparities and rates per group, each a figure.
    assert len(at.get("plotly_chart")) == 3


def test_accurate_but_unfair_candidate_is_flagged(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, model="churn-predictor", version="2")
    assert shown(at.error[0]) == "churn-predictor v2: fairness fails the policy's thresholds."
    headline = shown(at.warning[0])
    assert "(better)" in headline and "fairness fails (champion passes)" in headline
    comparison = at.dataframe[0].value.set_index(["feature", "disparity"])
    row = comparison.loc[("gender", "demographic_parity_difference")]
    assert row["v2"] > 0.1 > row["champion v1"]
    assert row["delta"] == pytest.approx(row["v2"] - row["champion v1"])
    assert (row["threshold"], row["result"], row["less fair"]) == ("max 0.08", "FAIL", True)


def test_the_champion_is_not_compared_with_itself(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, model="credit-default", version="1")
    assert at.selectbox(key="model").value == "credit-default"
    assert "v1 is the champion." in captions(at)


def test_recompute_with_another_feature_and_the_intersection(monkeypatch, env) -> None:
    at = open_page(monkeypatch, env, model="churn-predictor", version="2")
    at.radio(key="fairness_mode").set_value(RECOMPUTE).run()
    chooser = at.multiselect(key="fairness_sensitive")
    assert chooser.value == ["gender"] and "age_band" in chooser.options
    assert "label" not in chooser.options
    chooser.set_value(["gender", "age_band"]).run()
    assert_no_exception(at)
    assert [t.label for t in at.tabs] == ["gender", "age_band", "gender&age_band"]
    assert "Source: computed now from artifact evaluation/evaluation.parquet" in captions(at)
    groups = at.dataframe[-1].value
    assert "F&18-29" in set(groups["group"]) and "(overall)" in set(groups["group"])

    at.multiselect(key="fairness_sensitive").set_value([]).run()
    assert at.info[-1].value == "Choose at least one sensitive feature."


def test_a_policy_naming_a_missing_column_is_a_clear_error(
    monkeypatch, env, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace(
            'sensitive_features = ["gender"]', 'sensitive_features = ["ethnicity"]'
        )
    )
    at = open_page(monkeypatch, {**env, "MLOPS_POLICY_FILE": str(policy)})
    assert "Sensitive column 'ethnicity' is not in the data" in shown(at.error[0])

"""Fairness: a version's rates per group and disparities against the policy, next to the
champion's, from the evidence stored in MLflow or recomputed from the evaluation set.

The model and version live in the URL (?model=...&version=...), so other pages can link here.
"""

from dataclasses import asdict

import pandas as pd
import streamlit as st

from mlops_core.config import Settings
from mlops_core.evidence.fairness import DISPARITY_METRICS, FairnessReport, FeatureResult
from mlops_core.evidence.fairness_evidence import (
    FairnessReview,
    gated_features,
    load_evaluation_set,
    model_policy,
    review_fairness,
    sensitive_options,
)
from ui.app_state import REGISTRY_TTL_SECONDS, cached_overview, or_stop, registry, settings
from ui.charts.fairness import comparison_figure, disparity_figure, group_rates_figure
from ui.identity import require_page
from ui.text import plain

current = settings()
require_page(current, "fairness")

STORED = "Stored in MLflow"
RECOMPUTE = "Recompute from the evaluation set"
VERDICT = {True: "pass", False: "FAIL", None: "not checked"}
RATE = st.column_config.NumberColumn(format="%.4f")


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the evaluation set…")
def _sensitive_options(current: Settings, model: str, version: str) -> list[str]:
    loaded = load_evaluation_set(current, registry(current.tracking_uri), model, version)
    return sensitive_options(loaded.frame, model_policy(current, model))


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Evaluating fairness…")
def _review(
    current: Settings, model: str, version: str, recompute: bool, sensitive: tuple[str, ...]
) -> FairnessReview:
    return review_fairness(
        current, registry(current.tracking_uri), model, version, recompute, sensitive or None
    )


def _checks_frame(feature: FeatureResult) -> pd.DataFrame:
    checks = {c.metric: c for c in feature.checks}
    return pd.DataFrame(
        [
            {
                "disparity": metric,
                "value": feature.disparity(metric),
                "threshold": (
                    f"{checks[metric].bound} {checks[metric].threshold:g}"
                    if metric in checks
                    else "none"
                ),
                "result": VERDICT[checks[metric].passed] if metric in checks else "",
            }
            for metric in DISPARITY_METRICS
        ]
    )


def _groups_frame(feature: FeatureResult, report: FairnessReport) -> pd.DataFrame:
    rows = pd.DataFrame([asdict(g) for g in [*feature.groups, report.overall]])
    return rows.rename(columns={"insufficient_data": "too small to compare"})


def _show_feature(feature: FeatureResult, report: FairnessReport) -> None:
    st.markdown(f"**{plain(feature.name)}**: {VERDICT[feature.passed]}")
    st.dataframe(
        _checks_frame(feature), hide_index=True, width="stretch", column_config={"value": RATE}
    )
    st.plotly_chart(disparity_figure(feature), width="stretch")
    st.plotly_chart(group_rates_figure(feature, report.overall), width="stretch")
    rate_columns = ["selection_rate", "tpr", "fpr", "precision", "accuracy"]
    st.dataframe(
        _groups_frame(feature, report),
        hide_index=True,
        width="stretch",
        column_config={name: RATE for name in rate_columns},
    )


st.title("Fairness")
st.caption(
    "How the model's decisions differ between groups of people on its evaluation set: "
    "rates per group and the disparities the promotion policy limits."
)

entries = or_stop(cached_overview, current.tracking_uri)
if not entries:
    st.info("No registered models yet. Run `python -m mlops_core demo` to load the demo scenario.")
    st.stop()

models = {entry.name: entry for entry in entries}
left, middle, right = st.columns(3)
model = left.selectbox("Model", list(models), key="model", bind="query-params")
versions = models[model].versions
if not versions:
    st.info(plain(f"{model} has no versions yet."))
    st.stop()
# Plain numbers, so that ?version=2 in a link selects version 2 (aliases move).
version = middle.selectbox(
    "Version", [v.version for v in versions], key="version", bind="query-params"
)
aliases = [f"{alias}: v{v.version}" for v in versions for alias in v.aliases]
middle.caption(", ".join(aliases) if aliases else "No aliases set.")
mode = right.radio("Evidence", [STORED, RECOMPUTE], key="fairness_mode")

sensitive: tuple[str, ...] = ()
if mode == RECOMPUTE:
    options = or_stop(_sensitive_options, current, model, version)
    gated = gated_features(or_stop(model_policy, current, model))
    chosen = st.multiselect(
        "Sensitive features",
        options,
        default=[c for c in gated if c in options],
        key="fairness_sensitive",
        help="With two or more, their intersection (e.g. gender&age_band) is evaluated too.",
    )
    if not chosen:
        st.info("Choose at least one sensitive feature.")
        st.stop()
    sensitive = tuple(chosen)
else:
    st.caption(
        "Stored evidence covers the policy's sensitive features. Choose "
        f"“{RECOMPUTE}” to look at other columns (such as age_band) or their intersection."
    )

review = or_stop(_review, current, model, version, mode == RECOMPUTE, sensitive)
report = review.evidence.report
message = (
    f"{model} v{review.version}: fairness "
    + {
        True: "passes the policy's thresholds.",
        False: "fails the policy's thresholds.",
        None: "has no verdict: no threshold could be checked.",
    }[report.passed]
)
{True: st.success, False: st.error, None: st.info}[report.passed](message)
config = report.config
decision = f"{config.score} ≥ {config.threshold:g}" if config.score else f"{config.prediction} = 1"
st.caption(
    plain(
        f"Source: {review.evidence.source}. {report.n_rows:,} rows; decision {decision}; "
        f"groups under {config.min_group_size} rows are left out of the disparities."
    )
)
if report.notes:
    st.warning("\n".join(f"- {note}" for note in report.notes))

st.subheader("Against the champion")
comparison = review.comparison
if review.champion_problem:
    st.warning(
        plain(f"The champion could not be evaluated for comparison. {review.champion_problem}")
    )
elif comparison is None:
    st.caption(
        f"v{review.version} is the champion."
        if review.champion_version == review.version
        else f"{model} has no champion to compare with."
    )
else:
    (st.warning if comparison.more_accurate_but_less_fair else st.info)(comparison.headline)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "feature": r.feature,
                    "disparity": r.metric,
                    f"champion v{comparison.champion_version}": r.champion,
                    f"v{comparison.candidate_version}": r.candidate,
                    "delta": r.delta,
                    "threshold": f"{r.bound} {r.threshold:g}" if r.threshold is not None else "",
                    "result": VERDICT[r.candidate_passed] if r.threshold is not None else "",
                    "less fair": r.less_fair,
                }
                for r in comparison.rows
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            f"champion v{comparison.champion_version}": RATE,
            f"v{comparison.candidate_version}": RATE,
            "delta": st.column_config.NumberColumn(format="%+.4f"),
        },
    )
    for feature in report.features:
        st.plotly_chart(
            comparison_figure(
                comparison.rows,
                feature.name,
                comparison.candidate_version,
                comparison.champion_version,
            ),
            width="stretch",
        )

st.subheader(f"v{review.version} per sensitive feature")
for tab, feature in zip(st.tabs([f.name for f in report.features]), report.features, strict=True):
    with tab:
        _show_feature(feature, report)

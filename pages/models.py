"""Models: registered models, one model's versions and lineage, a candidate against the champion.

The chosen model, version, candidate and compared versions live in the URL, so a link opens
the same view for a colleague.
"""

from urllib.parse import urlencode

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from mlops_core.evidence.comparison import (
    MAX_COMPARED,
    MIN_COMPARED,
    ChampionComparison,
    candidate_vs_champion,
    description_preview,
    key_metrics,
    models_table,
    versions_table,
)
from mlops_core.evidence.lineage import Lineage, version_lineage
from mlops_core.governance.version_gates import stored_gates
from mlops_core.markdown_safety import safe_markdown
from mlops_core.people.access import page_refusal
from mlops_core.policy import Policy, describe_target, load_policy
from mlops_core.stores.registry import ModelSummary
from ui.app_state import REGISTRY_TTL_SECONDS, or_stop, registry, settings
from ui.approvals_views import gates_frame
from ui.checks_view import render_checks
from ui.comparison_view import (
    MISSING,
    REFRESH_HINT,
    cached_version_comparison,
    render_comparison,
)
from ui.identity import require_page
from ui.tables import without_blank_columns
from ui.text import plain

current = settings()
actor = require_page(current, "models")

# More of the chosen model's description than a table cell, still bounded.
FULL_DESCRIPTION_CHARS = 5_000
PASS_STYLE = "background-color: rgba(46, 160, 67, 0.25)"
FAIL_STYLE = "background-color: rgba(248, 81, 73, 0.3)"


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the model registry…")
def cached_models(tracking_uri: str, policy: Policy) -> list[ModelSummary]:
    return registry(tracking_uri).list_models(policy.serving_target)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading versions…")
def cached_versions(tracking_uri: str, model: str, metrics: tuple[str, ...]) -> pd.DataFrame:
    return versions_table(registry(tracking_uri), model, list(metrics))


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading lineage…")
def cached_lineage(tracking_uri: str, model: str, version: str) -> Lineage:
    return version_lineage(registry(tracking_uri), model, version)


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Comparing with the champion…")
def cached_candidate(
    tracking_uri: str, model: str, version: str, policy: Policy
) -> ChampionComparison:
    return candidate_vs_champion(registry(tracking_uri), model, version, policy)


def verdict_styles(deltas: pd.DataFrame) -> Styler:
    """Rows the policy gates are green when they pass and red when they fail."""

    def row_style(row: pd.Series) -> list[str]:
        style = "" if pd.isna(row["passes"]) else PASS_STYLE if row["passes"] else FAIL_STYLE
        return [style] * len(row)

    numbers = ["candidate", "champion", "delta", "regression", "tolerance", "minimum"]
    return deltas.style.apply(row_style, axis=1).format(precision=4, subset=numbers, na_rep=MISSING)


def logged_model_section(lineage: Lineage) -> None:
    """The MLflow 3 logged model that holds the version's files, params and metrics."""
    model = lineage.logged_model
    if model is None:
        return
    st.markdown("**Logged model**")
    flavors = (
        "unknown (MLmodel not readable)" if model.flavors is None else ", ".join(model.flavors)
    )
    signature = {None: "unknown", True: "yes", False: "no"}[model.has_signature]
    st.dataframe(
        pd.DataFrame(
            {
                "": ["id", "name", "flavors", "signature", "source run", "status", "created"],
                "value": [
                    model.model_id,
                    model.name,
                    flavors,
                    signature,
                    model.source_run_id,
                    model.status,
                    str(model.created_at),
                ],
            }
        ),
        hide_index=True,
        key="logged_model",
    )
    params, metrics = st.columns(2)
    params.caption("Params logged on the model")
    params.dataframe(lineage.logged_model_params, hide_index=True, key="logged_model_params")
    metrics.caption("Metrics logged on the model")
    metrics.dataframe(lineage.logged_model_metrics, hide_index=True, key="logged_model_metrics")
    st.caption("Model files")
    st.dataframe(pd.DataFrame({"file": model.artifacts}), hide_index=True, key="model_files")


def registered_gates_section(model: str, version: str) -> None:
    """The gates the worker evaluated when the version was registered, before any request."""
    st.markdown("**Gates when registered**")
    stored = or_stop(stored_gates, current.db_url, model, version)
    if stored is None:
        st.caption(
            "Not evaluated yet: the worker (python -m mlops_core worker) evaluates the gates "
            "of each new version of a model the policy covers."
        )
        return
    st.caption(
        plain(
            f"{stored.summary}; evaluated {stored.evaluated_at:%Y-%m-%d %H:%M} UTC on "
            f"{stored.trigger}, under {stored.policy_source or 'no policy file'}. Gates are "
            "evaluated again at request and at every decision."
        )
    )
    st.dataframe(gates_frame(stored.results), hide_index=True, key="registered_gates")


def lineage_section(lineage: Lineage) -> None:
    """Where a version comes from, every value from MLflow shown as plain text or a table."""
    version = lineage.version
    if version.description:
        with st.container(border=True, key="version_description"):
            st.markdown(
                safe_markdown(description_preview(version.description, FULL_DESCRIPTION_CHARS))
            )
    if version.tags:
        st.dataframe(
            pd.DataFrame(sorted(version.tags.items()), columns=["version tag", "value"]),
            hide_index=True,
            key="version_tags",
        )
    run = lineage.run
    # A table, not Markdown: run and experiment names are whatever someone typed.
    st.dataframe(
        pd.DataFrame(
            {
                "": ["model source", "stage", "source run", "run name", "experiment", "status"],
                "value": [
                    version.source,
                    version.stage,
                    run.run_id if run else "(registered without a source run)",
                    run.run_name if run else None,
                    (lineage.experiment_name or run.experiment_id) if run else None,
                    run.status if run else None,
                ],
            }
        ),
        hide_index=True,
        key="lineage_run",
    )
    if run is not None and lineage.experiment_name and page_refusal(actor, "experiments") is None:
        # A relative link, so it works under any base path; the query is URL-encoded, so a
        # hostile experiment name stays inside it.
        query = urlencode(
            {"exp": lineage.experiment_name, "filter": f"attributes.run_id = '{run.run_id}'"}
        )
        st.markdown(f"[Open the source run on the Experiments page](experiments?{query})")
    if lineage.logged_model_problem:
        st.warning(plain(lineage.logged_model_problem))
    logged_model_section(lineage)
    if run is None:
        return
    st.markdown("**Dataset inputs**")
    if lineage.datasets.empty:
        st.caption("The run logged no dataset inputs.")
    else:
        st.dataframe(lineage.datasets, hide_index=True, key="lineage_datasets")
    st.markdown("**Artifacts of the run**")
    if lineage.artifacts:
        st.dataframe(
            pd.DataFrame({"artifact": lineage.artifacts}), hide_index=True, key="artifacts"
        )
    elif lineage.logged_model is not None:
        st.caption("None: since MLflow 3 the model's files are on the logged model above.")
    else:
        st.caption("The run logged no artifacts.")


st.title("Models")
st.caption("Registered models, their versions and where each comes from. " + REFRESH_HINT)

policy = or_stop(load_policy, current.policy_file)
models = or_stop(cached_models, current.tracking_uri, policy)
if not models:
    st.info(
        "No registered models in the tracking store yet. "
        "Run `python -m mlops_core demo` to load the demo scenario."
    )
    st.stop()

models_shown = without_blank_columns(models_table(models), ["aliases", "stages", "tags"])
# One cell says what is served and from where, so the description stays on screen.
models_shown["champion"] = (
    models_shown["champion"].fillna("none") + " (" + models_shown.pop("served from") + ")"
)
st.dataframe(
    models_shown,
    hide_index=True,
    column_config={
        "champion_changed_at": st.column_config.DatetimeColumn(
            "since", format="YYYY-MM-DD", help="When the champion last changed"
        ),
        "last_updated": st.column_config.DatetimeColumn("last update", format="YYYY-MM-DD"),
        "description": st.column_config.TextColumn(width="medium"),
        # A rollout adds its mlops.rollout.* tags: the whole text is one hover away.
        "tags": st.column_config.TextColumn(width="medium"),
    },
    key="models_table",
)

by_name = {m.name: m for m in models}
name = st.selectbox("Model", list(by_name), key="model", bind="query-params")
summary = by_name[name]
model_policy = policy.for_model(name)
if summary.description:
    # Markdown as in MLflow's UI, without its raw HTML: a description is whatever someone
    # typed into MLflow. A long one is shown in part (the whole text would freeze the
    # browser) and can be downloaded whole.
    with st.container(border=True, key="model_description"):
        st.markdown(safe_markdown(description_preview(summary.description, FULL_DESCRIPTION_CHARS)))
    if len(summary.description) > FULL_DESCRIPTION_CHARS:
        st.download_button(
            "Download the whole description",
            summary.description,
            file_name=f"{name}-description.txt",
            mime="text/plain",
        )

versions = or_stop(cached_versions, current.tracking_uri, name, tuple(key_metrics(policy, name)))
numbers = versions["version"].tolist()
if not numbers:
    st.info(plain(f"{name} has no versions yet."))
    st.stop()
label = {v: f"v{v}" for v in numbers}

target = policy.serving_target(name)
served = describe_target(target) if target else "champion"
if target is None:
    st.warning(
        plain(
            f"No policy covers {name}: it can be looked at, not promoted. "
            + policy.missing_entry_help(name)
        )
    )
versions_tab, champion_tab, compare_tab = st.tabs(
    ["Versions and lineage", f"Candidate vs {plain(served)}", "Compare versions"]
)

with versions_tab:
    st.dataframe(
        without_blank_columns(versions, ["aliases", "stage", "author", "tags"]),
        hide_index=True,
        placeholder=MISSING,
        column_config={
            "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            "description": st.column_config.TextColumn(width="medium"),
        },
        key="versions_table",
    )
    version = st.selectbox(
        "Lineage of version", numbers, format_func=label.get, key="version", bind="query-params"
    )
    lineage = or_stop(cached_lineage, current.tracking_uri, name, version)
    lineage_section(lineage)
    registered_gates_section(name, version)
    checks_policy = model_policy.checks
    render_checks(
        current,
        actor,
        name,
        version,
        checks_policy.max_latency_p99_ms if checks_policy else None,
        key="version_checks",
    )

with champion_tab:
    champion = summary.champion.version if summary.champion else None
    others = [v for v in numbers if v != champion] or numbers
    candidate = st.selectbox(
        "Candidate version",
        numbers,
        index=numbers.index(others[0]),
        format_func=label.get,
        key="candidate",
        bind="query-params",
    )
    result = or_stop(cached_candidate, current.tracking_uri, name, candidate, policy)
    if result.champion is None:
        st.warning(
            plain(
                f"Nothing is served at the {served} of {name} yet: nothing to compare with."
                if target
                else f"No policy names where {name} is served: no champion to compare with."
            )
        )
    else:
        # The target and the policy's path are the policy author's text: shown as text.
        st.caption(
            plain(
                f"v{candidate} against the {served}, v{result.champion.version}. Thresholds "
                f"from {result.policy_source}: regression tolerance (max_regression) and "
                "minimum (min_metrics) per metric; ungated metrics are not coloured."
            )
        )
    if result.passes is True:
        st.success("Every metric the policy gates passes.")
    elif result.passes is False:
        failing = result.deltas.loc[result.deltas["passes"].eq(False).fillna(False), "metric"]
        st.warning("Fails the policy on: " + ", ".join(failing))
    else:
        st.info("The policy sets no metric thresholds for this model.")
    st.dataframe(verdict_styles(result.deltas), hide_index=True, placeholder=MISSING, key="deltas")
    st.markdown("**Params that differ**")
    if result.params.empty:
        st.caption("Same params.")
    else:
        st.dataframe(result.params, hide_index=True, placeholder=MISSING, key="param_differences")


with compare_tab:
    # Not a fragment: a fragment's rerun would drop the model and version the page's other
    # widgets keep in the URL, and a shared link must open the same comparison.
    chosen = st.multiselect(
        "Versions to compare",
        numbers,
        format_func=label.get,
        max_selections=MAX_COMPARED,
        key="versions",
        bind="query-params",
        placeholder=f"Choose {MIN_COMPARED} to {MAX_COMPARED} versions",
    )
    if len(chosen) < MIN_COMPARED:
        st.info(f"Choose {MIN_COMPARED} to {MAX_COMPARED} versions to compare them.")
    else:
        comparison = or_stop(
            cached_version_comparison,
            current.tracking_uri,
            name,
            tuple(chosen),
            policy.metric_direction,
        )
        render_comparison(
            comparison,
            current.tracking_uri,
            f"{name}-versions.csv",
            policy.key_metric(name, tuple(versions.columns)),
        )

"""An MLflow store built the way a team builds theirs: stock MLflow 3 and scikit-learn only.

Nothing here imports the panel. The store holds what the panel meets in the wild:
- an autologged GridSearchCV sweep (a parent run with child runs), a failed run, a long
  parameter and step metrics;
- `team-churn`, a classifier served from the alias `production` (v1) with a candidate (v2), both
  with `mlflow.log_input` datasets (training and evaluation) and an `mlflow.models.evaluate` run;
  a Markdown description that carries raw HTML, model and version tags;
- `team-house-price`, a regressor served from `production`, whose evaluation table comes from
  `mlflow.models.evaluate` with a per-row metric;
- `team-legacy-fraud`, registered with stages only (v1 Production, v2 Staging, no aliases);
- `team-nosig`, a model logged without a signature and without an alias;
- no panel policy.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.metrics import MetricValue, make_metric
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV

CHURN_FEATURES = ["tenure", "monthly_charges", "senior", "is_female", "contract"]
HOUSE_FEATURES = ["rooms", "area", "age", "owner_occupied", "neighborhood"]
# MLflow 3 saves scikit-learn models with skops, which asks the author to vouch for trees.
TREE_TYPES = ["sklearn.tree._tree.Tree"]
LONG_PARAM = ",".join(f"feature_{i:03d}" for i in range(300))
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
HOSTILE_DESCRIPTION = (
    "# Churn model\n\nOwned by **growth**. <script>alert('xss')</script>"
    '<img src=x onerror="alert(1)"> See [runbook](https://example.invalid/runbook).'
)


@dataclass(frozen=True)
class TeamStore:
    tracking_uri: str
    folder: Path
    churn_experiment_id: str
    house_experiment_id: str
    sweep_parent_run_id: str
    sweep_child_run_ids: tuple[str, ...]
    failed_run_id: str
    churn_v1_run_id: str
    churn_v2_run_id: str
    churn_eval_run_id: str
    house_v1_run_id: str
    house_v2_run_id: str
    house_eval_run_id: str


def churn_frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    monthly = rng.normal(70 + shift, 20, rows).round(2)
    senior = rng.integers(0, 2, rows)
    is_female = rng.random(rows) < 0.5
    contract = pd.Categorical(rng.choice(["monthly", "yearly", "two-year"], rows))
    logit = -0.04 * tenure + 0.03 * (monthly - 70) + 0.6 * senior - 0.2
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly,
            "senior": senior,
            "is_female": is_female,
            "contract": contract,
            "churned": churned,
        }
    )


def house_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 8, rows)
    area = rng.normal(90, 30, rows).clip(20).round(1)
    age = rng.integers(0, 80, rows)
    owner = rng.random(rows) < 0.6
    neighborhood = pd.Categorical(rng.choice(["north", "south", "centre"], rows))
    price = (
        50_000 + 20_000 * rooms + 1_500 * area - 400 * age + rng.normal(0, 15_000, rows)
    ).round(0)
    return pd.DataFrame(
        {
            "rooms": rooms,
            "area": area,
            "age": age,
            "owner_occupied": owner,
            "neighborhood": neighborhood,
            "price": price,
        }
    )


def _numeric(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    out = frame[features].copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].cat.codes.astype("int64")
        elif out[column].dtype == bool:
            out[column] = out[column].astype("int64")
    return out


def _dataset(frame: pd.DataFrame, path: Path, name: str, targets: str):
    frame.to_parquet(path)
    return mlflow.data.from_pandas(frame, source=str(path), name=name, targets=targets)


def _absolute_error():
    def score(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        errors = np.abs(np.asarray(predictions) - np.asarray(targets))
        return MetricValue(scores=errors.tolist(), aggregate_results={"mean": errors.mean()})

    return make_metric(eval_fn=score, greater_is_better=False, name="absolute_error")


def _churn_version(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    estimator,
    train: pd.DataFrame,
    evaluation: pd.DataFrame,
    folder: Path,
) -> tuple[str, str]:
    """Train, log datasets and the model (with signature), register; (run id, model uri)."""
    x_train, x_eval = _numeric(train, CHURN_FEATURES), _numeric(evaluation, CHURN_FEATURES)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        estimator.fit(x_train, train["churned"])
        mlflow.log_input(
            _dataset(train, folder / f"{run_name}-train.parquet", "churn-train", "churned"),
            context="training",
        )
        mlflow.log_input(
            _dataset(evaluation, folder / f"{run_name}-eval.parquet", "churn-eval", "churned"),
            context="evaluation",
        )
        mlflow.log_params(estimator.get_params())
        proba = estimator.predict_proba(x_eval)[:, 1]
        mlflow.log_metrics(
            {
                "roc_auc": float(roc_auc_score(evaluation["churned"], proba)),
                "accuracy": float(accuracy_score(evaluation["churned"], proba >= 0.5)),
            }
        )
        for step in range(5):
            mlflow.log_metric("train_loss", 0.7 / (step + 1), step=step)
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            input_example=x_train.head(3),
            skops_trusted_types=TREE_TYPES,
        )
    version = mlflow.register_model(info.model_uri, "team-churn")
    client.set_model_version_tag("team-churn", version.version, "validated_by", "qa-team")
    return run.info.run_id, info.model_uri


def build_team_store(folder: Path) -> TeamStore:
    """Write the store under `folder` (mlflow.db + artifacts/ + datasets/) and describe it."""
    folder.mkdir(parents=True, exist_ok=True)
    datasets = folder / "datasets"
    datasets.mkdir(exist_ok=True)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous_uri = mlflow.get_tracking_uri()
    previous_env = os.environ.get(TRACKING_URI_VARIABLE)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    artifacts = (folder / "artifacts").as_uri()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _build(client, folder, datasets, tracking_uri, artifacts)
    finally:
        mlflow.sklearn.autolog(disable=True)
        mlflow.set_tracking_uri(previous_uri)
        # set_tracking_uri also exports the URI to the environment, where every later test's
        # panel would read it instead of its own store.
        if previous_env is None:
            os.environ.pop(TRACKING_URI_VARIABLE, None)
        else:
            os.environ[TRACKING_URI_VARIABLE] = previous_env


def _build(
    client: MlflowClient, folder: Path, datasets: Path, tracking_uri: str, artifacts: str
) -> TeamStore:
    churn_exp = client.create_experiment("team/churn", artifact_location=f"{artifacts}/churn")
    house_exp = client.create_experiment("team/house-prices", artifact_location=f"{artifacts}/h")
    train, evaluation = churn_frame(600, 1), churn_frame(300, 2, shift=5.0)

    # A sweep as autolog records it: one parent, one child run per candidate.
    mlflow.sklearn.autolog(max_tuning_runs=4, log_models=False, silent=True, log_datasets=False)
    with mlflow.start_run(experiment_id=churn_exp, run_name="lr-sweep") as parent:
        search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=3)
        search.fit(_numeric(train, CHURN_FEATURES), train["churned"])
    mlflow.sklearn.autolog(disable=True)
    children = client.search_runs(
        [churn_exp], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )

    with mlflow.start_run(experiment_id=churn_exp, run_name="nightly-features") as failed:
        mlflow.log_param("feature_list", LONG_PARAM)
        mlflow.log_metric("rows_read", 0)
    client.set_terminated(failed.info.run_id, status="FAILED")

    v1_run, _ = _churn_version(
        client, churn_exp, "churn-lr", LogisticRegression(max_iter=300), train, evaluation, datasets
    )
    v2_run, v2_uri = _churn_version(
        client,
        churn_exp,
        "churn-gbm",
        GradientBoostingClassifier(n_estimators=30, random_state=0),
        train,
        evaluation,
        datasets,
    )
    client.set_registered_model_alias("team-churn", "production", "1")
    client.update_registered_model("team-churn", description=HOSTILE_DESCRIPTION)
    client.set_registered_model_tag("team-churn", "owner", "growth")

    eval_frame = evaluation.copy()
    eval_frame[CHURN_FEATURES] = _numeric(evaluation, CHURN_FEATURES)
    with mlflow.start_run(experiment_id=churn_exp, run_name="evaluate-gbm") as churn_eval:
        mlflow.models.evaluate(
            model=v2_uri,
            data=eval_frame,
            targets="churned",
            model_type="classifier",
            evaluator_config={"log_model_explainability": False},
        )

    house_train, house_eval = house_frame(500, 3), house_frame(250, 4)
    house_runs = []
    for run_name, estimator in (
        ("house-linear", LinearRegression()),
        ("house-forest", RandomForestRegressor(n_estimators=20, random_state=0)),
    ):
        with mlflow.start_run(experiment_id=house_exp, run_name=run_name) as run:
            x = _numeric(house_train, HOUSE_FEATURES)
            estimator.fit(x, house_train["price"])
            mlflow.log_input(
                _dataset(house_train, datasets / f"{run_name}.parquet", "houses", "price"),
                context="training",
            )
            predicted = estimator.predict(_numeric(house_eval, HOUSE_FEATURES))
            error = predicted - house_eval["price"].to_numpy()
            mlflow.log_metrics(
                {
                    "rmse": float(np.sqrt(np.mean(error**2))),
                    "mae": float(np.mean(np.abs(error))),
                    "r2": float(r2_score(house_eval["price"], predicted)),
                }
            )
            info = mlflow.sklearn.log_model(
                estimator, name="model", input_example=x.head(3), skops_trusted_types=TREE_TYPES
            )
        mlflow.register_model(info.model_uri, "team-house-price")
        house_runs.append((run.info.run_id, info.model_uri))
    client.set_registered_model_alias("team-house-price", "production", "1")

    house_eval_frame = house_eval.copy()
    house_eval_frame[HOUSE_FEATURES] = _numeric(house_eval, HOUSE_FEATURES)
    with mlflow.start_run(experiment_id=house_exp, run_name="evaluate-forest") as house_eval_run:
        mlflow.models.evaluate(
            model=house_runs[1][1],
            data=house_eval_frame,
            targets="price",
            model_type="regressor",
            extra_metrics=[_absolute_error()],
            evaluator_config={"log_model_explainability": False},
        )

    # The registry from before aliases: stages only.
    for seed in (5, 6):
        with mlflow.start_run(experiment_id=churn_exp, run_name=f"fraud-{seed}"):
            frame = churn_frame(200, seed)
            model = LogisticRegression(max_iter=200).fit(
                _numeric(frame, CHURN_FEATURES), frame["churned"]
            )
            mlflow.log_metric("roc_auc", 0.7 + seed / 100)
            info = mlflow.sklearn.log_model(model, name="model")
        mlflow.register_model(info.model_uri, "team-legacy-fraud")
    client.transition_model_version_stage("team-legacy-fraud", "1", "Production")
    client.transition_model_version_stage("team-legacy-fraud", "2", "Staging")

    with mlflow.start_run(experiment_id=house_exp, run_name="no-signature"):
        model = LinearRegression().fit(np.arange(10).reshape(-1, 1), np.arange(10))
        info = mlflow.sklearn.log_model(model, name="model")
    mlflow.register_model(info.model_uri, "team-nosig")

    return TeamStore(
        tracking_uri=tracking_uri,
        folder=folder,
        churn_experiment_id=churn_exp,
        house_experiment_id=house_exp,
        sweep_parent_run_id=parent.info.run_id,
        sweep_child_run_ids=tuple(run.info.run_id for run in children),
        failed_run_id=failed.info.run_id,
        churn_v1_run_id=v1_run,
        churn_v2_run_id=v2_run,
        churn_eval_run_id=churn_eval.info.run_id,
        house_v1_run_id=house_runs[0][0],
        house_v2_run_id=house_runs[1][0],
        house_eval_run_id=house_eval_run.info.run_id,
    )

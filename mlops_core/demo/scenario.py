"""The demo scenario: two registered models with real versions, sweeps and an inference log.

Deterministic (fixed seeds) and idempotent: every step first checks whether its result is
already in the store and adds nothing on a second run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy import inspect

from mlops_core.config import Settings
from mlops_core.demo.data import SENSITIVE, SPECS, ModelSpec
from mlops_core.demo.evidence import (
    seed_behaviour_checks,
    seed_drift_history,
    seed_fairness_evidence,
    seed_quality_checks,
)
from mlops_core.demo.rollout import MODEL as ROLLOUT_MODEL
from mlops_core.demo.rollout import start_demo_rollout
from mlops_core.demo.slow_scorer import SlowTailScorer
from mlops_core.demo.traffic import logged_until, replay
from mlops_core.identity import Actor
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.people.user_admin import acting_admin
from mlops_core.policy import EXAMPLE_POLICY
from mlops_core.stores import audit
from mlops_core.stores.db import get_engine, migrate
from mlops_core.stores.registry import DEFAULT_ALIAS, Registry

SEED = 20260105
TRAIN_ROWS = 8000
EVAL_ROWS = 3000
WEEKS = 8
ROWS_PER_WEEK = 2000
DRIFT_FROM_WEEK = 5
LABEL_DELAY = timedelta(days=14)
LABEL_SHARE = 0.8
CHALLENGER = "3"
DEMO_TAG = "mlops.demo"
# We trained these ourselves, so their skops payload is trusted.
TRUSTED_TYPES = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]
PIP_REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"]


@dataclass(frozen=True)
class Candidate:
    """One registered version: the algorithm, whether it sees the proxy, and why it exists."""

    algorithm: str
    params: dict[str, object]
    uses_proxy: bool
    description: str
    legacy: bool = False


CANDIDATES = [
    Candidate(
        "logistic_regression",
        {"C": 0.05, "max_iter": 500},
        False,
        "Baseline logistic regression on the legacy features; the current production model.",
        legacy=True,
    ),
    Candidate(
        "hist_gradient_boosting",
        {"max_iter": 200, "learning_rate": 0.05, "max_depth": 4},
        True,
        "Gradient boosting with the regional feature: best ROC AUC, but check fairness.",
    ),
    Candidate(
        "random_forest",
        # 60 trees score as well as 200 here and keep a single-row call near 6 ms, well
        # inside the demo policy's 50 ms p99 latency gate.
        {"n_estimators": 60, "max_depth": 8},
        False,
        "Random forest without the regional feature: better than the baseline, fair enough.",
    ),
]


# churn-predictor v3 scores every request in shadow from this week on (its team's own
# router logged it; no rollout of the panel's is involved).
SHADOW_FROM_WEEK = 5
# credit-default v3's staged rollout starts with this week (`demo.rollout`).
ROLLOUT_FROM_WEEK = 6

# Logged through the slow-tailed custom scorer (demo/slow_scorer.py): its behaviour checks
# fail the policy's latency gate, a second reason besides fairness not to promote it.
SLOW_VERSION = ("credit-default", 2)
SLOW_NOTE = " Served through a custom scorer whose every 16th call waits 60 ms: check latency."


@dataclass
class DemoReport:
    """What a demo run added; empty lists mean the store already had everything."""

    models: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    sweep_runs: int = 0
    inference_tables: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def added_anything(self) -> bool:
        return bool(
            self.models or self.versions or self.sweep_runs or self.inference_tables or self.extra
        )


def training_experiment(model_name: str) -> str:
    return f"training/{model_name}"


def inference_table(model_name: str) -> str:
    return "inference_" + model_name.replace("-", "_")


def build_pipeline(
    spec: ModelSpec, algorithm: str, params: dict, uses_proxy: bool, legacy: bool = False
) -> Pipeline:
    """A preprocessing + classifier pipeline over the features the candidate may use.

    Every pipeline takes all of the spec's columns (one signature for every version) and
    drops the proxy unless it is meant to use it, and the legacy features the old
    champion was built on lack `spec.newer_feature`.
    """
    categorical = [c for c in spec.categorical if uses_proxy or c != spec.proxy]
    numeric = [c for c in spec.numeric if not legacy or c != spec.newer_feature]
    numeric_step = StandardScaler() if algorithm == "logistic_regression" else "passthrough"
    prep = ColumnTransformer(
        [
            ("num", numeric_step, numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    estimators: dict[str, Callable[..., object]] = {
        "logistic_regression": LogisticRegression,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "gradient_boosting": GradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
    }
    extra = {} if algorithm == "logistic_regression" else {"random_state": 0}
    return Pipeline([("prep", prep), ("clf", estimators[algorithm](**params, **extra))])


def evaluation_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    predicted = (scores >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "f1": float(f1_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7))),
    }


def _datasets(spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(SEED + sum(map(ord, spec.name)))
    return spec.generate(TRAIN_ROWS, rng, 0.0), spec.generate(EVAL_ROWS, rng, 0.0)


def _ensure_experiment(client: MlflowClient, settings: Settings, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # With a tracking server the server decides where artifacts go (`--serve-artifacts`).
    location = f"{settings.artifact_root}/{name}" if settings.is_embedded_tracking else None
    return client.create_experiment(name, artifact_location=location)


def _has_demo_runs(client: MlflowClient, experiment_id: str, kind: str) -> bool:
    return bool(client.search_runs([experiment_id], f"tags.`{DEMO_TAG}` = '{kind}'", max_results=1))


def _sweep_configs(n: int, rng: np.random.Generator) -> list[tuple[str, dict]]:
    configs: list[tuple[str, dict]] = []
    for i in range(n):
        kind = ("logistic_regression", "random_forest", "gradient_boosting")[i % 3]
        if kind == "logistic_regression":
            params: dict = {"C": float(np.round(10 ** rng.uniform(-3, 1), 4)), "max_iter": 500}
        elif kind == "random_forest":
            params = {
                "n_estimators": int(rng.choice([20, 40, 60])),
                "max_depth": int(rng.integers(3, 10)),
                "min_samples_leaf": int(rng.choice([1, 5, 20])),
            }
        else:
            params = {
                "n_estimators": int(rng.choice([20, 40])),
                "learning_rate": float(np.round(rng.uniform(0.03, 0.3), 3)),
                "max_depth": int(rng.integers(2, 4)),
            }
        configs.append((kind, params))
    return configs


def _loss_history(model: Pipeline, frame: pd.DataFrame, labels: np.ndarray) -> list[float]:
    """Validation log loss after each boosting stage, so runs have a metric history."""
    transformed = model.named_steps["prep"].transform(frame)
    return [
        float(log_loss(labels, np.clip(p[:, 1], 1e-7, 1 - 1e-7)))
        for p in model.named_steps["clf"].staged_predict_proba(transformed)
    ]


def seed_sweep(client: MlflowClient, settings: Settings, spec: ModelSpec, runs: int) -> int:
    """A tuning sweep of real fits, logged in batches; returns the number of runs added."""
    experiment_id = _ensure_experiment(client, settings, training_experiment(spec.name))
    if _has_demo_runs(client, experiment_id, "sweep"):
        return 0
    train, evaluation = _datasets(spec)
    train = train.iloc[:3000]
    labels = evaluation[spec.target].to_numpy()
    rng = np.random.default_rng(SEED)
    for index, (algorithm, params) in enumerate(_sweep_configs(runs, rng)):
        uses_proxy = bool(index % 4 == 1)
        model = build_pipeline(spec, algorithm, params, uses_proxy)
        model.fit(train[spec.features], train[spec.target])
        scores = model.predict_proba(evaluation[spec.features])[:, 1]
        run = client.create_run(
            experiment_id,
            run_name=f"sweep-{algorithm}-{index:03d}",
            tags={DEMO_TAG: "sweep", "team": "risk-ml" if "credit" in spec.name else "growth-ml"},
        )
        now = int(datetime.now(UTC).timestamp() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in evaluation_metrics(labels, scores).items()]
        if algorithm == "gradient_boosting":
            history = _loss_history(model, evaluation[spec.features], labels)
            metrics += [Metric("val_log_loss", v, now, step) for step, v in enumerate(history)]
        all_params = {"model": algorithm, "uses_proxy": uses_proxy, "train_rows": len(train)}
        all_params.update(params)
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in all_params.items()],
            tags=[RunTag("mlflow.runName", run.info.run_name)],
        )
        client.set_terminated(run.info.run_id)
    return runs


def _log_frame(frame: pd.DataFrame, artifact_dir: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{artifact_dir.split('/')[-1]}.parquet"
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=artifact_dir)


def _train_version(spec: ModelSpec, candidate: Candidate, slow: bool = False) -> ModelInfo:
    """Train, evaluate and log one version's model inside the active run; a `slow` one
    through the slow-tailed custom scorer instead of the sklearn flavor."""
    train, evaluation = _datasets(spec)
    if candidate.legacy:
        # The champion is older: trained on less data, as production models usually are.
        train = train.iloc[:4000]
    model = build_pipeline(
        spec, candidate.algorithm, candidate.params, candidate.uses_proxy, candidate.legacy
    )
    model.fit(train[spec.features], train[spec.target])
    scores = model.predict_proba(evaluation[spec.features])[:, 1]
    metrics = evaluation_metrics(evaluation[spec.target].to_numpy(), scores)
    mlflow.log_params(
        {
            "model": candidate.algorithm,
            "uses_proxy": candidate.uses_proxy,
            "legacy_features": candidate.legacy,
            **candidate.params,
        }
    )
    mlflow.log_params({"train_rows": len(train), "features": ",".join(spec.features)})
    mlflow.log_metrics(metrics)
    eval_set = evaluation[spec.features + SENSITIVE].assign(
        label=evaluation[spec.target].to_numpy(),
        score=scores.round(6),
        prediction=(scores >= 0.5).astype(int),
    )
    reference = train[spec.features + [spec.target]].reset_index(drop=True)
    _log_frame(reference, "reference")
    _log_frame(eval_set, "evaluation")
    mlflow.log_input(
        mlflow.data.from_pandas(reference, name=f"{spec.name}-train", targets=spec.target),
        context="training",
    )
    mlflow.log_input(
        mlflow.data.from_pandas(eval_set, name=f"{spec.name}-evaluation", targets="label"),
        context="evaluation",
    )
    signature = infer_signature(train[spec.features], scores)
    if slow:
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=SlowTailScorer(model),
            signature=signature,
            input_example=train[spec.features].head(3),
            pip_requirements=PIP_REQUIREMENTS,
        )
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=train[spec.features].head(3),
        pip_requirements=PIP_REQUIREMENTS,
        skops_trusted_types=TRUSTED_TYPES,
    )


def seed_versions(client: MlflowClient, settings: Settings, spec: ModelSpec) -> list[str]:
    """Three versions: the old champion, an accurate-but-unfair one, a good-and-fair one."""
    if client.search_registered_models(f"name = '{spec.name}'"):
        return []
    experiment_id = _ensure_experiment(client, settings, training_experiment(spec.name))
    client.create_registered_model(
        spec.name,
        description=spec.description,
        tags={"domain": spec.name.split("-")[0], "owner": "ml-platform"},
    )
    added = []
    for number, candidate in enumerate(CANDIDATES, start=1):
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{spec.name}-v{number}-{candidate.algorithm}",
            tags={DEMO_TAG: "version"},
        ) as run:
            slow = (spec.name, number) == SLOW_VERSION
            info = _train_version(spec, candidate, slow)
        # The client registers quietly; mlflow.register_model prints "already exists" lines.
        client.create_model_version(
            spec.name,
            f"models:/{info.model_id}",
            run_id=run.info.run_id,
            description=candidate.description + (SLOW_NOTE if slow else ""),
            model_id=info.model_id,
        )
        added.append(f"{spec.name} v{number}")
    Registry(settings.tracking_uri).move_to(spec.name, DEFAULT_ALIAS, "1")
    return added


def _weekly_traffic(spec: ModelSpec, end: datetime) -> pd.DataFrame:
    """Eight weeks of requests with their request id; from week 5 on a few features drift."""
    rng = np.random.default_rng(SEED + 1)
    weeks = []
    start = end - timedelta(weeks=WEEKS)
    for week in range(1, WEEKS + 1):
        drift = 0.0 if week < DRIFT_FROM_WEEK else 0.6 + 0.1 * (week - DRIFT_FROM_WEEK)
        frame = spec.generate(ROWS_PER_WEEK, rng, drift)
        offsets = np.sort(rng.uniform(0, 7 * 24 * 3600, ROWS_PER_WEEK))
        frame["timestamp"] = (
            start + timedelta(weeks=week - 1) + pd.to_timedelta(offsets, unit="s")
        ).floor("s")
        frame["week"] = week
        weeks.append(frame)
    log = pd.concat(weeks, ignore_index=True)
    prefix = "".join(word[0] for word in spec.name.split("-"))
    log["request_id"] = [f"{prefix}-{index:06d}" for index in range(1, len(log) + 1)]
    return log


def requests_of(spec: ModelSpec, end: datetime) -> pd.DataFrame:
    """The weeks of requests and their labels as known at `end`: two weeks late for about
    80% of requests, never for the rest."""
    log = _weekly_traffic(spec, end)
    labelled = (np.random.default_rng(SEED + 2).random(len(log)) < LABEL_SHARE) & (
        log["timestamp"] < end - LABEL_DELAY
    ).to_numpy()
    log["label"] = log[spec.target].where(labelled).astype("Int64")
    return log


def shadow_log(spec: ModelSpec, models: dict[str, Pipeline], end: datetime) -> pd.DataFrame:
    """One row per request and version that scored it: the champion v1 serves every
    request, v3 scores the same requests in shadow from `SHADOW_FROM_WEEK`."""
    log = requests_of(spec, end)
    live = log["week"] >= SHADOW_FROM_WEEK
    rows = pd.concat(
        [log.assign(model_version="1"), log[live].assign(model_version=CHALLENGER)],
        ignore_index=True,
    )
    rows["score"] = 0.0
    for version, model in models.items():
        mine = rows["model_version"] == version
        rows.loc[mine, "score"] = model.predict_proba(rows.loc[mine, spec.features])[:, 1]
    rows = rows.sort_values(["timestamp", "model_version"], kind="stable", ignore_index=True)
    return pd.DataFrame(
        {
            "timestamp": rows["timestamp"],
            "request_id": rows["request_id"],
            "model": spec.name,
            "model_version": rows["model_version"],
            **{c: rows[c] for c in spec.features},
            "score": rows["score"].round(6),
            "prediction": (rows["score"] >= 0.5).astype(int),
            "label": rows["label"],
        }
    )


def _log_end(now: datetime) -> datetime:
    """Logs end on the most recent Monday at midnight UTC, so weeks are calendar weeks."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - timedelta(days=midnight.weekday())).replace(tzinfo=None)


def _versions(spec: ModelSpec) -> dict[str, Pipeline]:
    return {
        "1": mlflow.sklearn.load_model(f"models:/{spec.name}/1"),
        CHALLENGER: mlflow.sklearn.load_model(f"models:/{spec.name}/{CHALLENGER}"),
    }


def rollout_start(now: datetime) -> datetime:
    """When credit-default v3's rollout starts: the first day of `ROLLOUT_FROM_WEEK`."""
    return _log_end(now) - timedelta(weeks=WEEKS - ROLLOUT_FROM_WEEK + 1)


def seed_inference_log(settings: Settings, spec: ModelSpec, now: datetime) -> str | None:
    """churn-predictor's whole log; credit-default's up to its rollout, which
    `seed_rollout_traffic` continues once the rollout is published."""
    engine = get_engine(settings.inference_db_url)
    table = inference_table(spec.name)
    if inspect(engine).has_table(table):
        return None
    if spec.name == ROLLOUT_MODEL:
        requests = requests_of(spec, _log_end(now))
        before = requests[requests["timestamp"] < rollout_start(now)]
        replay(settings, spec, _versions(spec), before, table)
    else:
        shadow_log(spec, _versions(spec), _log_end(now)).to_sql(
            table, engine, index=False, chunksize=5000
        )
    return table


def seed_rollout_traffic(settings: Settings, now: datetime) -> list[str]:
    """credit-default's weeks from the rollout's start, routed by what the registry then
    says (its 10% stage, or the champion alone if no rollout was started)."""
    spec = next(spec for spec in SPECS if spec.name == ROLLOUT_MODEL)
    table, start = inference_table(spec.name), rollout_start(now)
    newest = logged_until(settings, table)
    if newest is None or newest >= start:
        return []
    requests = requests_of(spec, _log_end(now))
    with fluent_tracking(settings.tracking_uri):
        rows = replay(
            settings, spec, _versions(spec), requests[requests["timestamp"] >= start], table
        )
    return [f"{rows} rows of {spec.name} traffic routed by its rollout's state"]


def run_demo(
    settings: Settings,
    sweep_runs: int = 50,
    now: datetime | None = None,
    actor: Actor | None = None,
    progress: Callable[[str], None] = lambda _step: None,
) -> DemoReport:
    """Fill the store with the scenario; steps whose result already exists are skipped.

    An admin's action (`actor=None` only on a store without accounts, which then gets the
    demo accounts); what it added is recorded in the audit log. `progress` hears each step
    as it starts: seeding takes a minute or two.
    """
    now = now or datetime.now(UTC)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The evidence it stores is recorded in the panel's audit log.
    migrate(settings)
    acting = acting_admin(settings, actor, "load the demo scenario")
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    Registry(settings.tracking_uri).ping()
    report = DemoReport()
    with fluent_tracking(settings.tracking_uri):
        for spec in SPECS:
            progress(f"{spec.name}: training and registering 3 versions")
            added = seed_versions(client, settings, spec)
            if added:
                report.models.append(spec.name)
                report.versions += added
            progress(f"{spec.name}: {sweep_runs} tuning runs")
            report.sweep_runs += seed_sweep(client, settings, spec, sweep_runs)
            progress(f"{spec.name}: inference log")
            table = seed_inference_log(settings, spec, now)
            if table:
                report.inference_tables.append(table)
    if install_example_policy(settings):
        report.extra.append(f"example policy copied to {settings.data_dir / 'policy.toml'}")
    progress("fairness evidence of every version")
    report.extra += seed_fairness_evidence(settings, acting)
    progress("behaviour checks of every version, each in a sandboxed process")
    report.extra += seed_behaviour_checks(settings, acting)
    report.extra += [f"demo account {name}" for name in create_demo_accounts(settings)]
    progress("credit-default v3: a staged rollout at its 10% stage, and its traffic")
    report.extra += start_demo_rollout(settings, rollout_start(now))
    report.extra += seed_rollout_traffic(settings, now)
    progress("weekly drift checks")
    report.extra += seed_drift_history(settings, acting)
    progress("quality of each model's inference log")
    report.extra += seed_quality_checks(settings, acting)
    if report.added_anything:
        audit.record(
            settings,
            acting,
            "demo_loaded",
            reason="demo scenario loaded",
            details=dataclasses.asdict(report),
        )
    return report


def install_example_policy(settings: Settings) -> bool:
    """Give the demo models their gates unless a policy is configured or already there."""
    target = settings.data_dir / "policy.toml"
    if settings.policy_file is not None or target.exists():
        return False
    shutil.copyfile(EXAMPLE_POLICY, target)
    return True


@contextmanager
def fluent_tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at `uri` for a while, then put back what was there.

    `mlflow.set_tracking_uri` also sets MLFLOW_TRACKING_URI in the environment, which
    would otherwise leak into every process started afterwards.
    """
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    previous = mlflow.get_tracking_uri() if saved["MLFLOW_TRACKING_URI"] else None
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])

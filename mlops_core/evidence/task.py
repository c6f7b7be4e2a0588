"""Is a model a classifier or a regressor? The policy says so, or the registry shows it.

Signals, strongest first:
1. the policy's `task` for the model;
2. the signature's output: integers, booleans or text are classes;
3. the estimator's class (autolog's `estimator_class` tag, a flavor's `model_class`):
   `*Regressor`, `LinearRegression`, `Ridge`... or `*Classifier`, `LogisticRegression`, `SVC`...;
4. the metric names logged on the version's run (rmse, mae, r2 or
   roc_auc, accuracy, f1, log_loss);
5. the signature's output again: one column of floats is a regressor's value, unless the
   model predicts with `predict_proba`. It comes last because teams often log a
   classifier's signature with its scores (the demo does).
Nothing to go on means a classifier, the panel's assumption before it knew regressors; the
reason then says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mlflow.models import Model
from mlflow.types import Schema

from mlops_core.errors import NotFound
from mlops_core.policy import ModelPolicy, Task
from mlops_core.stores.model_files import mlmodel_of
from mlops_core.stores.registry import Registry

Reason = Literal["policy", "signature", "estimator", "metrics", "default"]

REGRESSION_METRICS = frozenset(
    {
        "rmse",
        "mae",
        "mse",
        "mape",
        "r2",
        "r2_score",
        "root_mean_squared_error",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "max_error",
        "explained_variance",
    }
)
CLASSIFICATION_METRICS = frozenset(
    {
        "roc_auc",
        "pr_auc",
        "accuracy",
        "accuracy_score",
        "f1",
        "f1_score",
        "log_loss",
        "precision",
        "precision_score",
        "recall",
        "recall_score",
        "roc_auc_score",
        "precision_recall_auc",
    }
)
REGRESSOR_CLASSES = frozenset(
    {"Ridge", "Lasso", "ElasticNet", "Lars", "LassoLars", "SVR", "LinearSVR", "NuSVR"}
    | {"KernelRidge", "BayesianRidge", "OrthogonalMatchingPursuit", "PLSRegression"}
)
CLASSIFIER_CLASSES = frozenset(
    {"LogisticRegression", "SVC", "LinearSVC", "NuSVC", "GaussianNB", "MultinomialNB"}
    | {"BernoulliNB", "ComplementNB", "CategoricalNB", "LinearDiscriminantAnalysis"}
)
# Autolog tags the run with the fitted estimator; some flavors name it in the MLmodel file.
ESTIMATOR_TAGS = ("estimator_class", "estimator_name")
CLASS_OUTPUTS = ("integer", "long", "int", "bool", "boolean", "string", "str", "object")


@dataclass(frozen=True)
class TaskDetection:
    """The task and which signal decided it, with the evidence in words."""

    task: Task
    reason: Reason
    detail: str

    @property
    def summary(self) -> str:
        return f"{self.task} ({self.reason}: {self.detail})"


def estimator_task(class_name: str) -> Task | None:
    """The task an estimator class implies, from its name (dotted or not)."""
    name = class_name.rsplit(".", 1)[-1].strip("'\"> ")
    base = name.removesuffix("CV")
    if base.endswith("Classifier") or base in CLASSIFIER_CLASSES:
        return "classification"
    if base.endswith(("Regressor", "Regression")) or base in REGRESSOR_CLASSES:
        return "regression"
    return None


def metrics_task(names: Iterable[str]) -> tuple[Task | None, list[str]]:
    """The task the metric names point to (None when they point nowhere or both ways),
    and the names that decided it."""
    regression, classification = [], []
    for name in sorted(set(names)):
        base = name.lower().rsplit(".", 1)[-1].split("/", 1)[0]
        if _names_metric(base, REGRESSION_METRICS):
            regression.append(name)
        elif _names_metric(base, CLASSIFICATION_METRICS):
            classification.append(name)
    if len(regression) > len(classification):
        return "regression", regression
    if len(classification) > len(regression):
        return "classification", classification
    return None, []


def _names_metric(name: str, known: frozenset[str]) -> bool:
    # "val_rmse", "training_accuracy_score" and "rmse" all name the metric.
    return name in known or any(name.endswith(f"_{metric}") for metric in known)


def signature_output(model: Model | None) -> tuple[str, int] | None:
    """The output type and the number of outputs of a signature, or None."""
    outputs: Schema | None = model.signature.outputs if model and model.signature else None
    if outputs is None:
        return None
    if outputs.is_tensor_spec():
        spec = outputs.inputs[0]
        shape = tuple(spec.shape or ())
        width = shape[1] if len(shape) > 1 and shape[1] > 0 else 1
        return str(spec.type), width
    return str(outputs.inputs[0].type.name), len(outputs.inputs)


def _predicts_proba(model: Model | None) -> bool:
    function = (model.flavors.get("python_function", {}) if model else {}).get("predict_fn")
    return function == "predict_proba"


def _flavor_classes(model: Model | None) -> list[str]:
    flavors = model.flavors.values() if model else []
    return [str(f["model_class"]) for f in flavors if isinstance(f, dict) and "model_class" in f]


def decide_task(
    *,
    policy_task: Task | None,
    model_file: Model | None,
    estimator_classes: Iterable[str],
    metric_names: Iterable[str],
) -> TaskDetection:
    """The task from the signals, in the order of the module docstring (pure)."""
    if policy_task is not None:
        return TaskDetection(policy_task, "policy", f'the policy sets task = "{policy_task}"')
    output = signature_output(model_file)
    if output is not None and output[0].lower() in CLASS_OUTPUTS:
        return TaskDetection(
            "classification", "signature", f"the signature's output holds {output[0]} classes"
        )
    for class_name in [*estimator_classes, *_flavor_classes(model_file)]:
        task = estimator_task(class_name)
        if task is not None:
            return TaskDetection(task, "estimator", f"the estimator is {class_name}")
    task, deciding = metrics_task(metric_names)
    if task is not None:
        return TaskDetection(task, "metrics", f"the version logs {', '.join(deciding)}")
    if output is not None and output[1] == 1 and not _predicts_proba(model_file):
        return TaskDetection(
            "regression", "signature", f"the signature's output is one {output[0]} value"
        )
    return TaskDetection(
        "classification",
        "default",
        "neither the policy, the signature, the estimator nor the metrics tell; "
        'set task = "regression" in the policy for a regressor',
    )


def detect_task(registry: Registry, policy: ModelPolicy, model: str, version: str) -> TaskDetection:
    """The task of a registered version (see `decide_task`)."""
    if policy.task is not None:
        return decide_task(
            policy_task=policy.task, model_file=None, estimator_classes=(), metric_names=()
        )
    found = registry.get_version(model, version)
    try:
        model_file: Model | None = mlmodel_of(registry, model, found.version)
    except NotFound:
        # A version whose files are gone still has its run's tags and metrics.
        model_file = None
    run = registry.get_run(found.run_id) if found.run_id else None
    tags: Mapping[str, str] = run.tags if run else {}
    return decide_task(
        policy_task=None,
        model_file=model_file,
        estimator_classes=[tags[t] for t in ESTIMATOR_TAGS if t in tags],
        metric_names=run.metrics if run else (),
    )

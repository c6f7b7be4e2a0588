"""`fairness`: group fairness of a model version (under the policy) or of any labelled file.

`--log` stores the evidence in MLflow, which changes state and needs an access token.
Exit 0 when every configured disparity is within its threshold (or none could be checked,
which the output says), 1 when one is not, 2 on an error.
"""

from __future__ import annotations

import argparse
import math

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.evidence.fairness import (
    FairnessConfig,
    FairnessReport,
    FeatureResult,
    evaluate_fairness,
)
from mlops_core.evidence.fairness_evidence import (
    FairnessEvidence,
    describe_check,
    fairness_for_version,
    record_fairness_evidence,
    resolve_version,
    worst_check,
)
from mlops_core.evidence.regression_fairness import RegressionFeatureResult
from mlops_core.policy import FAIRNESS_METRICS, FairnessPolicy, load_policy
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import load_file

EXIT_OK, EXIT_FAILED = 0, 1
_DATA_ONLY = ("label", "pred", "score", "threshold", "max", "min_group_size", "task")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fairness",
        help=help_of("fairness"),
        description=(
            "With --model: the version's fairness under the policy (stored evidence when it "
            "matches the policy, else computed from its evaluation set). With --data: any "
            "CSV/Parquet file with labels, predictions (or scores) and sensitive columns."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="registered model name")
    target.add_argument("--data", metavar="FILE", help="CSV or Parquet evaluation file")
    parser.add_argument("--version", help="version number or alias (with --model)")
    parser.add_argument(
        "--sensitive",
        metavar="COL[,COL]",
        help="sensitive columns; with two or more their intersection is evaluated too "
        "(with --model: instead of the policy's features)",
    )
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="compute from the evaluation set even when evidence is stored (with --model)",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="compute with the policy's settings and store the evidence on the version's run",
    )
    parser.add_argument("--label", metavar="COL", help="true label column (with --data)")
    parser.add_argument(
        "--task",
        choices=["classification", "regression"],
        help="a regressor's fairness compares mean predictions, mean labels, MAE and RMSE "
        "between groups, its --pred holding the predicted value (with --data; default "
        "classification; with --model the policy's task, else the detected one)",
    )
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument(
        "--pred",
        metavar="COL",
        help="predicted class column (two values, see --positive-label), or a regressor's "
        "predicted value",
    )
    decision.add_argument("--score", metavar="COL", help="score column, thresholded")
    parser.add_argument(
        "--threshold", type=float, help="decision threshold for --score (default: the policy's)"
    )
    parser.add_argument(
        "--weight",
        metavar="COL",
        help="sample weight column: weighted rates, as Fairlearn's sample_weight (with --data)",
    )
    parser.add_argument(
        "--control",
        metavar="COL",
        help="control column: disparities within each of its levels, the worst one checked, "
        "as Fairlearn's control_features (with --data)",
    )
    parser.add_argument(
        "--positive-label",
        metavar="VALUE",
        type=parse_label,
        help="the favourable class of --label and --pred, e.g. 1 for labels -1/1 or yes for "
        "no/yes (with --data; default: the policy's, else 1)",
    )
    parser.add_argument(
        "--max",
        metavar="METRIC=VALUE",
        action="append",
        help="a disparity threshold, repeatable (default: the policy's [defaults.fairness]); "
        "differences are maxima, ratios (demographic_parity_ratio, mae_ratio, ...) minima",
    )
    parser.add_argument(
        "--min-group-size", type=int, help="smaller groups are left out of the disparities"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_token_arguments(parser)
    parser.set_defaults(handler=handle)


def parse_label(text: str) -> int | bool | str:
    """A label as the data holds it: a whole number, true/false, or the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.model is not None:
        evidence, subject = _model_evidence(args, settings)
    else:
        evidence, subject = _data_evidence(args, settings)
    report = evidence.report
    if args.json:
        task = {"task_reason": evidence.task_reason} if evidence.task_reason else {}
        print_json({**subject, "source": evidence.source, **task, **report.to_dict()})
    else:
        _print_report(subject, evidence)
    return EXIT_FAILED if report.passed is False else EXIT_OK


def _columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise InvalidInput("--sensitive names no column; give e.g. --sensitive gender,age_band.")
    return names


def _model_evidence(
    args: argparse.Namespace, settings: Settings
) -> tuple[FairnessEvidence, dict[str, str]]:
    given = [f"--{name.replace('_', '-')}" for name in _DATA_ONLY if getattr(args, name)]
    if given:
        raise InvalidInput(
            f"Only --data takes {', '.join(given)}; with --model the policy's fairness and "
            "data sections set the columns and thresholds."
        )
    if not args.version:
        raise InvalidInput("--model needs --version (a version number or an alias).")
    sensitive = _columns(args.sensitive)
    # Stored evidence is checked against (and logged evidence recorded in) the audit log.
    migrate(settings)
    registry = Registry(settings.tracking_uri)
    version = resolve_version(registry, args.model, args.version).version
    if args.log:
        if sensitive:
            raise InvalidInput(
                "--log stores evidence computed with the policy's sensitive features; "
                "leave out --sensitive."
            )
        actor = token_actor(args, settings, "`fairness --log`")
        evidence = record_fairness_evidence(settings, registry, args.model, version, actor)
        evidence = evidence._replace(source=f"{evidence.source}; stored on the version's run")
    else:
        evidence = fairness_for_version(
            settings, registry, args.model, version, recompute=args.recompute, sensitive=sensitive
        )
    return evidence, {"model": args.model, "version": version}


def _parse_limits(values: list[str]) -> dict[str, float]:
    limits = {}
    for value in values:
        metric, separator, number = value.partition("=")
        try:
            if not separator:
                raise ValueError
            limits[metric.strip()] = float(number)
        except ValueError:
            raise InvalidInput(
                f"--max {value!r} is not METRIC=VALUE, e.g. --max demographic_parity_difference=0.1"
                f"; metrics: {', '.join(FAIRNESS_METRICS)}."
            ) from None
    return limits


def _data_evidence(
    args: argparse.Namespace, settings: Settings
) -> tuple[FairnessEvidence, dict[str, str]]:
    for flag, name in (("--version", "version"), ("--recompute", "recompute"), ("--log", "log")):
        if getattr(args, name):
            raise InvalidInput(f"{flag} applies to --model only.")
    if not args.label or not args.sensitive or not (args.pred or args.score):
        raise InvalidInput(
            "--data needs --label COL, --sensitive COL[,COL] and one of --pred COL or --score COL."
        )
    if args.threshold is not None and args.score is None:
        raise InvalidInput("--threshold applies to --score only; --pred is already a class.")
    defaults = load_policy(settings.policy_file).defaults.fairness or FairnessPolicy()
    config = FairnessConfig(
        label=args.label,
        sensitive=_columns(args.sensitive) or [],
        prediction=args.pred,
        score=args.score,
        threshold=defaults.decision_threshold if args.threshold is None else args.threshold,
        positive_label=(
            defaults.positive_label if args.positive_label is None else args.positive_label
        ),
        weight=args.weight or defaults.weight_column,
        control=args.control or defaults.control_column,
        min_group_size=(
            defaults.min_group_size if args.min_group_size is None else args.min_group_size
        ),
        max_disparity=_parse_limits(args.max) if args.max else dict(defaults.thresholds),
        task=args.task or "classification",
    )
    loaded = load_file(args.data)
    evidence = FairnessEvidence(
        evaluate_fairness(loaded.frame, config), f"computed now from {loaded.description}"
    )
    return evidence, {"data": args.data}


# --- text output ----------------------------------------------------------------------------


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "not checked"}[passed]


def _decision(config: FairnessConfig) -> str:
    if config.task == "regression":
        return f"predicted value {config.prediction}"
    if config.score is not None:
        return f"{config.score} >= {config.threshold:g}"
    return f"{config.prediction} == {config.positive_label!r}"


def _print_report(subject: dict[str, str], evidence: FairnessEvidence) -> None:
    report = evidence.report
    config = report.config
    name = f"{subject['model']} v{subject['version']}" if "model" in subject else subject["data"]
    print(f"Fairness of {name} ({report.task})")
    print(f"  {evidence.source}")
    if evidence.task_reason:
        print(f"  task: {evidence.task_reason}")
    print(
        f"  {report.n_rows:,} rows; label {config.label}; decision {_decision(config)}; "
        f"groups under {config.min_group_size} rows are left out of the disparities"
    )
    for feature in report.features:
        print(f"\n{feature.name}: {_verdict(feature.passed)}")
        checks = {c.metric: c for c in feature.checks}
        rows = [
            [
                metric,
                _number(feature.disparity(metric)),
                f"{checks[metric].bound} {checks[metric].threshold:g}" if metric in checks else "-",
                _verdict(checks[metric].passed) if metric in checks else "",
            ]
            for metric in report.metrics
        ]
        print(table(["disparity", "value", "threshold", "result"], rows))
        print()
        print(_groups_table(feature, report))
    for note in report.notes:
        print(f"note: {note}")
    print(f"\n{_conclusion(report)}")


GROUP_HEADINGS = {
    "selection_rate": "selection",
    "tpr": "TPR",
    "fpr": "FPR",
    "mean_prediction": "mean prediction",
    "mean_label": "mean label",
    "mae": "MAE",
    "rmse": "RMSE",
}


def _groups_table(feature: FeatureResult | RegressionFeatureResult, report: FairnessReport) -> str:
    fields = report.group_fields
    rows = [
        [
            g.group + (" (too small)" if g.insufficient_data else ""),
            f"{g.count:,}",
            *[_number(getattr(g, name)) for name in fields],
        ]
        for g in [*feature.groups, report.overall]
    ]
    return table(["group", "rows", *[GROUP_HEADINGS.get(f, f) for f in fields]], rows)


def _conclusion(report: FairnessReport) -> str:
    worst = worst_check(report)
    if report.passed is None:
        return "NO VERDICT: no disparity threshold could be checked (see the notes)."
    assert worst is not None  # a verdict means at least one check was evaluated
    word = "PASSED" if report.passed else "FAILED"
    closest = "worst" if report.passed is False else "closest to its threshold"
    return f"{word}; {closest}: {describe_check(*worst)}"

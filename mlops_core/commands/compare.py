"""`compare`: 2 to 10 runs, or versions of one model, side by side, as a table or CSV."""

from __future__ import annotations

import argparse
import math

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import table
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.evidence.comparison import Comparison, compare_runs, compare_versions, parse_id_list
from mlops_core.policy import load_policy
from mlops_core.stores.registry import Registry

# Long params (feature lists) would push every other column off the screen; CSV keeps them.
MAX_CELL = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help=help_of("compare"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--runs", help="comma-separated run IDs")
    target.add_argument("--model", help="a registered model; use with --versions")
    parser.add_argument("--versions", help="comma-separated version numbers of --model")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument(
        "--only-differences", action="store_true", help="leave out what every item shares"
    )
    parser.set_defaults(handler=handle)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render_text(comparison: Comparison, only_differences: bool) -> str:
    """Metrics (the best value of each marked *) and then params, one column per item."""
    labels = comparison.labels
    metrics = comparison.metrics_table(only_differences)
    best = comparison.best_mask(metrics)
    rows = [
        [f"{metrics.at[i, 'metric']} ({metrics.at[i, 'better']})"]
        + [_cell(metrics.at[i, label]) + ("*" if best.at[i, label] else "") for label in labels]
        for i in metrics.index
    ]
    params = comparison.params_table(only_differences)
    rows += [[f"param {p}", *(_cell(v) for v in values)] for p, *values in params.itertuples(False)]
    return table(["", *labels], rows) + "\n* best value of the metric"


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.model and not args.versions:
        raise InvalidInput("--model needs --versions, e.g. --versions 1,3.")
    overrides = load_policy(settings.policy_file).metric_direction
    registry = Registry(settings.tracking_uri)
    if args.runs:
        comparison = compare_runs(registry, parse_id_list(args.runs), overrides)
    else:
        comparison = compare_versions(registry, args.model, parse_id_list(args.versions), overrides)
    if args.csv:
        print(comparison.to_csv(args.only_differences), end="")
    else:
        print(render_text(comparison, args.only_differences))
    return 0

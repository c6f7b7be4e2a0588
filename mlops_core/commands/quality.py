"""`quality`: a model's quality on its inference log, per version and window, under its policy.

Logged as a run of `monitoring/<model>` unless --no-log (a write: it needs an access
token). Exit 0 when every complete window meets the policy, 1 when a threshold is
breached, 2 on an error.
"""

from __future__ import annotations

import argparse
import math

from mlops_core.commands.catalog import help_of
from mlops_core.commands.drift import parse_window
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.evidence.quality import QualityReport
from mlops_core.evidence.quality_runs import run_quality_check
from mlops_core.people.access import require_evidence_writer
from mlops_core.stores.audit import json_safe
from mlops_core.stores.db import migrate

EXIT_OK, EXIT_BREACHED = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quality",
        help=help_of("quality"),
        description=(
            "Rows, label coverage and quality metrics of each served version per window of "
            "the model's inference log, drift of its scores and labels, alerts against the "
            "policy's [monitoring] thresholds, and the champion against the challenger on "
            "the same (shadow) or split traffic. Logged to MLflow (monitoring/<model>) "
            "unless --no-log."
        ),
    )
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--version", help="only this version (the challenger to compare)")
    parser.add_argument(
        "--window",
        metavar="START:END",
        help="rows with START <= timestamp < END (ISO dates or times, UTC; either may be "
        "empty); default: the whole log",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--no-log", action="store_true", help="do not log the check to MLflow")
    add_token_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    window = parse_window(args.window) if args.window else None
    actor = None
    if not args.no_log:
        # Before the check is computed, so a missing token fails fast.
        actor = token_actor(args, settings, "Logging the check to MLflow (--no-log skips it)")
        require_evidence_writer(actor, "log a quality check to MLflow")
        migrate(settings)
    report = run_quality_check(
        settings, args.model, args.version, window, log=not args.no_log, actor=actor
    )
    if args.json:
        print_json(json_safe(report.to_dict()))
    else:
        _print_report(report)
    return EXIT_BREACHED if report.alerts else EXIT_OK


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _print_report(report: QualityReport) -> None:
    print(f"Quality of {report.model} ({report.task})")
    print(
        f"  period {report.period_start:%Y-%m-%d} to {report.period_end:%Y-%m-%d}, windows of "
        f"{report.monitoring.window_days} days; labels complete "
        f"{report.monitoring.label_delay_days:g} days after a window ends"
    )
    metrics = list(report.thresholds(report.versions[0]) if report.versions else {})
    shown = metrics or ["roc_auc" if report.task != "regression" else "rmse"]
    rows = [
        [
            f"v{w.version}",
            f"{w.start:%Y-%m-%d}",
            w.status,
            str(w.rows),
            f"{w.coverage:.0%}",
            *[_number(w.metrics.get(m)) for m in shown],
        ]
        for w in report.windows
    ]
    print(table(["version", "window", "status", "rows", "labelled", *shown], rows))
    for version in report.versions:
        bounds = report.thresholds(version)
        if bounds:
            text = ", ".join(f"{m} {v:.4f}" for m, v in bounds.items())
            print(f"  v{version} held to: {text}")
    for note in report.notes:
        print(f"note: {note}")
    if report.comparison is not None:
        c = report.comparison
        print(
            f"\nv{c.challenger} vs v{c.champion} ({c.mode}, {c.n_compared} labelled "
            f"{'pairs' if c.mode == 'shadow' else 'rows'}, {c.confidence:.0%} intervals)"
        )
        print(
            table(
                [
                    "metric",
                    f"v{c.champion}",
                    f"v{c.challenger}",
                    "difference",
                    "interval",
                    "method",
                    "verdict",
                    "rows needed",
                ],
                [
                    [
                        m.metric,
                        _number(m.champion),
                        _number(m.challenger),
                        _number(m.difference),
                        f"[{_number(m.ci_low)}, {_number(m.ci_high)}]",
                        m.method,
                        m.verdict,
                        "-" if m.rows_needed is None else str(m.rows_needed),
                    ]
                    for m in c.metrics
                ],
            )
        )
    elif report.comparison_note:
        print(f"\nno live comparison: {report.comparison_note}")
    if report.alerts:
        print(f"\nBREACHED: {len(report.alerts)} alert(s)")
        for alert in report.alerts:
            print(f"  {alert.message}")
    else:
        print(f"\n{report.status.upper()}: {report.summary}")

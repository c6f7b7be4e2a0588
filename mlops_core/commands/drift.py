"""`drift`: data drift of a model's current data (under its policy) or between two files.

With --model the check is logged as a run of `monitoring/<model>` unless --no-log; logging
changes state, so it needs an access token.
Exit 0 when the dataset has not drifted, 1 when it has, 2 on an error.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.evidence.drift import DriftOptions, DriftResult, compute_drift
from mlops_core.evidence.monitoring import (
    DriftCheck,
    DriftVerdict,
    check_model_drift,
    default_verdict,
    drift_report,
    log_drift_check,
)
from mlops_core.people.access import require_evidence_writer
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry
from mlops_core.stores.sources import load_file

EXIT_OK, EXIT_DRIFTED = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drift",
        help=help_of("drift"),
        description=(
            "With --model: a window of the model's configured current data against the "
            "reference set of its champion (or --version), with the policy's drift settings, "
            "logged to MLflow (monitoring/<model>) unless --no-log. With --reference and "
            "--current: any two files over their common columns with the default settings."
        ),
    )
    parser.add_argument("--model", help="registered model name")
    parser.add_argument("--version", help="reference version (default: the champion)")
    parser.add_argument(
        "--window",
        metavar="START:END",
        help="current data with START <= timestamp < END (ISO dates or times, UTC; either may "
        "be empty); default: the latest window_days of the policy",
    )
    parser.add_argument("--reference", metavar="FILE", help="reference CSV or Parquet file")
    parser.add_argument("--current", metavar="FILE", help="current CSV or Parquet file")
    parser.add_argument("--sample-size", type=int, help="rows per side (default: the policy's)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--no-log", action="store_true", help="do not log the check to MLflow")
    add_token_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.model is not None:
        check, subject = _model_drift(args, settings)
        result, verdict = check.result, check.verdict
    else:
        result, subject = _file_drift(args)
        verdict = default_verdict(result)
    if args.json:
        print_json({**subject, **result.to_dict(), **verdict.to_dict()})
    else:
        _print_result(subject, result, verdict)
    return EXIT_DRIFTED if verdict.drifted else EXIT_OK


def parse_window(value: str) -> tuple[datetime | None, datetime | None]:
    # Timestamps hold colons too, so the separator is the colon that splits the value into
    # two parseable halves (or the empty ends of "START:" and ":END").
    candidates = [i for i, char in enumerate(value) if char == ":"]
    for index in candidates:
        try:
            start, end = (_moment(part) for part in (value[:index], value[index + 1 :]))
        except ValueError:
            continue
        if start and end and start >= end:
            raise InvalidInput(f"--window {value!r}: the start must come before the end.")
        return start, end
    raise InvalidInput(f"--window {value!r} is not START:END, e.g. --window 2026-01-05:2026-01-12.")


def _moment(text: str) -> datetime | None:
    if not text.strip():
        return None
    moment = datetime.fromisoformat(text.strip())
    # Stored timestamps are naive UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _model_drift(args: argparse.Namespace, settings: Settings) -> tuple[DriftCheck, dict]:
    if args.reference or args.current:
        raise InvalidInput("Give either --model or --reference and --current, not both.")
    window = parse_window(args.window) if args.window else None
    if not args.no_log:
        # Before the check is computed, so a missing token fails fast.
        actor = token_actor(args, settings, "Logging the check to MLflow (--no-log skips it)")
        require_evidence_writer(actor, "log a drift check to MLflow")
    registry = Registry(settings.tracking_uri)
    check = check_model_drift(
        settings, registry, args.model, args.version, window, sample_size=args.sample_size
    )
    subject = _subject(check)
    if not args.no_log:
        # The digests of the logged files go into the panel's audit log.
        migrate(settings)
        subject["mlflow_run_id"] = log_drift_check(
            settings, registry, check, drift_report(check), actor
        )
    return check, subject


def _subject(check: DriftCheck) -> dict:
    return {
        "model": check.model,
        "reference_version": check.reference_version,
        "reference": f"{check.reference.description} ({check.reference.caption})",
        "current": f"{check.current.description} ({check.current.caption})",
        "window_start": check.window_start.isoformat(sep=" ") if check.window_start else None,
        "window_end": check.window_end.isoformat(sep=" ") if check.window_end else None,
        "max_drift_share": check.max_drift_share,
    }


def _file_drift(args: argparse.Namespace) -> tuple[DriftResult, dict]:
    for flag, value in (("--version", args.version), ("--window", args.window)):
        if value:
            raise InvalidInput(f"{flag} applies to --model only.")
    if not (args.reference and args.current):
        raise InvalidInput("Give --model M, or both --reference FILE and --current FILE.")
    reference = load_file(args.reference, args.sample_size)
    current = load_file(args.current, args.sample_size)
    columns = [c for c in reference.frame.columns if c in current.frame.columns]
    if not columns:
        raise InvalidInput(f"{args.reference} and {args.current} have no column in common.")
    result = compute_drift(reference.frame, current.frame, DriftOptions(columns=columns))
    subject = {
        "reference": f"{reference.description} ({reference.caption})",
        "current": f"{current.description} ({current.caption})",
    }
    return result, subject


def _print_result(subject: dict, result: DriftResult, verdict: DriftVerdict) -> None:
    title = subject.get("model", "two files")
    print(f"Drift of {title}")
    for key in ("reference", "current"):
        print(f"  {key}: {subject[key]}")
    rows = [
        [c.column, c.column_type, c.method, f"{c.score:.4f}", f"{c.threshold:g}", _word(c.drifted)]
        for c in result.columns
    ]
    print(table(["column", "type", "method", "score", "threshold", "drifted"], rows))
    for skipped in result.skipped:
        print(f"skipped {skipped.column}: {skipped.reason}")
    word = "DRIFTED" if verdict.drifted else "NOT DRIFTED"
    print(
        f"\n{word}: {len(result.drifted_columns)} of {len(result.columns)} columns drifted "
        f"({result.drift_share:.0%}; {verdict.rule})"
    )
    print(f"threshold {verdict.threshold:g} from {verdict.source}")
    if "mlflow_run_id" in subject:
        print(f"logged to MLflow: run {subject['mlflow_run_id']}")


def _word(drifted: bool) -> str:
    return "yes" if drifted else "no"

"""`check`: behaviour checks of a model version, run in a sandboxed subprocess.

Loads the version as an MLflow pyfunc in a subprocess with a time and memory limit and
measures batch prediction, determinism, missing values, schema enforcement, latency,
throughput, size and declared requirements. This executes the model's code: run it where
that is acceptable (CI, the worker's container). `--log` stores the report as evidence on
the version's run for the `checks` gates; that changes state and needs an access token.
Exit 0 when the checks completed and none failed, 1 when one failed or the sandbox did not
complete (timeout, memory limit, load failure), 2 on an error.
"""

from __future__ import annotations

import argparse
import sys

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import plain, print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.evidence.behaviour.report import CheckReport, Progress
from mlops_core.evidence.behaviour.run import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, run_checks
from mlops_core.evidence.behaviour.store import log_check_report
from mlops_core.people.access import require_evidence_writer
from mlops_core.stores.db import migrate

EXIT_OK, EXIT_FAILED = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help=help_of("check"),
        description=(
            "Load the version in a sandboxed subprocess (it runs the model's code) and "
            "measure batch prediction, determinism, missing values, schema enforcement, "
            "single-row latency, batch throughput, size and requirements; --log stores the "
            "report on the version's run for the policy's checks gates."
        ),
    )
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--version", required=True, help="version number or alias")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--log", action="store_true", help="store the report as evidence on the version's run"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds the sandbox may take (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="N",
        help=f"the sandbox's address-space limit in MB (default {DEFAULT_MEMORY_MB})",
    )
    add_token_arguments(parser)
    parser.set_defaults(handler=handle)


class _StepPrinter:
    """One line on stderr per step of the probe, so a CI log shows where it is."""

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, progress: Progress) -> None:
        if progress.step != self.last:
            self.last = progress.step
            print(f"  {plain(progress.step)}: {plain(progress.message)}", file=sys.stderr)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.timeout <= 0 or args.memory_mb <= 0:
        raise InvalidInput("--timeout and --memory-mb must be positive.")
    actor = None
    if args.log:
        # Refused before the model runs, not after minutes of checks.
        migrate(settings)
        actor = token_actor(args, settings, "`check --log`")
        require_evidence_writer(actor, "store behaviour check evidence in MLflow")
    report = run_checks(
        settings,
        args.model,
        args.version,
        timeout_s=args.timeout,
        memory_mb=args.memory_mb,
        on_progress=None if args.json else _StepPrinter(),
    )
    if actor is not None:
        log_check_report(settings, report, actor)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report, stored=actor is not None)
    return EXIT_FAILED if failed(report) else EXIT_OK


def failed(report: CheckReport) -> bool:
    return bool(report.failure) or any(o.status == "failed" for o in report.outcomes)


def _figure(value: float | None, unit: str, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f} {unit}"


def _print_report(report: CheckReport, stored: bool) -> None:
    print(f"Behaviour checks of {plain(report.model)} v{plain(report.version)}")
    print(f"  rows: {plain(report.input_source)} ({report.rows_used} rows)")
    print(
        f"  sandbox: {report.limits.timeout_s:g} s, {report.limits.memory_mb} MB; "
        f"model {plain(report.model_uri)}"
    )
    if report.failure:
        print(f"  SANDBOX FAILED: {plain(report.failure)}")
    if report.outcomes:
        rows = [[plain(o.name), o.status, plain(o.detail)[:120]] for o in report.outcomes]
        print()
        print(table(["check", "status", "detail"], rows))
    latency = report.latency
    print()
    print(
        table(
            ["figure", "value"],
            [
                ["latency p50", _figure(latency.p50_ms if latency else None, "ms")],
                ["latency p95", _figure(latency.p95_ms if latency else None, "ms")],
                ["latency p99", _figure(latency.p99_ms if latency else None, "ms")],
                ["throughput", _figure(report.throughput_rows_per_s, "rows/s", 0)],
                ["model size", _figure(report.model_size_mb, "MB")],
                ["peak load memory", _figure(report.peak_load_memory_mb, "MB", 1)],
                ["deterministic", _word(report.deterministic)],
                ["missing values", report.missing_values or "-"],
            ],
        )
    )
    for warning in report.requirement_warnings:
        print(f"warning: requirement {plain(warning)}")
    if stored:
        print(f"\nStored as evidence on run {plain(report.run_id)} (checks/report.json).")
    failures = [o.name for o in report.outcomes if o.status == "failed"]
    if report.failure:
        print(f"\nFAILED: the sandbox did not complete ({plain(report.failure)}).")
    elif failures:
        print(f"\nFAILED: {', '.join(plain(f) for f in failures)}.")
    else:
        print("\nPASSED: every check completed without a failure.")


def _word(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "NO"

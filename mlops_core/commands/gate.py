"""`gate`: evaluate the promotion gates of a model version, for CI pipelines.

Exit 0 when every gate passes, 1 when one fails or cannot be evaluated, 2 on an error.
"""

from __future__ import annotations

import argparse

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.config import Settings
from mlops_core.governance.decision_record import gates_markdown
from mlops_core.governance.gates import evaluate_gates
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gate", help=help_of("gate"))
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--version", required=True, help="candidate version")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    # Stored evidence is checked against the digests in the panel's audit log.
    migrate(settings)
    report = evaluate_gates(settings, Registry(settings.tracking_uri), args.model, args.version)
    if args.json:
        print_json(report.to_dict())
    elif args.markdown:
        print(f"### Gates for {report.model} v{report.version}: {report.summary}\n")
        print(gates_markdown(report.results))
    else:
        champion = f"v{report.champion_version}" if report.champion_version else "none"
        print(f"{report.model} v{report.version} ({report.alias}: {champion}): {report.summary}")
        if report.results:
            rows = [[r.status.replace("_", " "), r.name, r.reason] for r in report.results]
            print(table(["status", "gate", "detail"], rows))
    return 0 if report.passed else 1

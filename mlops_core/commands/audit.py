"""`audit verify` walks the keyed hash chain against its anchors; `audit export --csv`
writes the log as CSV."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from mlops_core.commands.catalog import help_of
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.stores import audit
from mlops_core.stores.db import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help=help_of("audit"))
    actions = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="check the keyed chain and its anchors; name the first broken event"
    )
    verify.set_defaults(handler=handle_verify)
    export = actions.add_parser("export", help="export events (oldest first)")
    export.add_argument("--csv", action="store_true", required=True, help="CSV (the format)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    export.add_argument("--model")
    export.add_argument("--actor")
    export.add_argument("--action")
    export.add_argument("--since", type=_date, help="YYYY-MM-DD, inclusive (UTC)")
    export.add_argument("--until", type=_date, help="YYYY-MM-DD, inclusive (UTC)")
    export.set_defaults(handler=handle_export)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def handle_verify(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    status = audit.verify(settings)
    print(status.summary)
    return 0 if status.ok else 1


def handle_export(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    filters = audit.AuditFilter(
        model=args.model,
        actor=args.actor,
        action=args.action,
        since=args.since,
        until=args.until,
    )
    text = audit.export_csv(settings.db_url, filters)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"Cannot write {args.output}: {exc.strerror}.") from None
    print(f"Wrote the audit log to {args.output}.", file=sys.stderr)
    return 0

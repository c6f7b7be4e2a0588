"""`python -m mlops_core`: the same core the UI uses, for people and CI pipelines.

Exit codes: 0 success (or every check passed), 1 a check failed (a gate, drift, fairness),
2 an error (bad input, unreachable server, refused action), 141 the reader of the output
went away (`... | head`), as for any Unix tool a closed pipe stops. Errors are one clear
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module

from mlops_core.commands.catalog import COMMANDS
from mlops_core.commands.output import json_document_only
from mlops_core.config import load_settings
from mlops_core.errors import MlopsError
from mlops_core.redaction import redact

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def _invoked(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if arg in COMMANDS), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the invoked command's module registers its arguments; every
    other command is listed by name and help only, without importing its module."""
    parser = argparse.ArgumentParser(prog="python -m mlops_core", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    invoked = _invoked(sys.argv[1:] if argv is None else argv)
    owner = COMMANDS[invoked][0] if invoked else None
    if owner is not None:
        import_module(f"mlops_core.commands.{owner}").register(subparsers)
    for name, (module, help_text) in COMMANDS.items():
        if module != owner:
            subparsers.add_parser(name, help=help_text)
    return parser


def _quiet_libraries() -> None:
    # MLflow and scikit-learn chatter would drown the one line a CI log needs.
    warnings.filterwarnings("ignore")
    # MLflow prints links to each finished run on an HTTP tracking server to stdout.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    try:
        try:
            return _run(argv)
        finally:
            # Inside the handler: a reader that left makes this flush fail, here.
            sys.stdout.flush()
    except BrokenPipeError:
        # Output nobody reads is not an error worth a traceback; stdout points nowhere so
        # the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        with json_document_only(getattr(args, "json", False)):
            return int(args.handler(args, load_settings()))
    except MlopsError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_ERROR

"""`demo`: fill the store with the demo scenario (adds nothing when it is already there).

Loading it is an admin's action with an access token, except into a store without any
account (a fresh install), where it also creates the demo accounts.
"""

from __future__ import annotations

import argparse
import sys

from mlops_core.commands.catalog import help_of
from mlops_core.commands.token_auth import add_token_arguments, token_or_bootstrap_actor
from mlops_core.config import Settings, ensure_data_dir
from mlops_core.demo.scenario import run_demo
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help=help_of("demo"))
    parser.add_argument(
        "--sweep-runs", type=int, default=50, help="tuning runs per model (default 50)"
    )
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the registry already holds any model (used by `make run`)",
    )
    add_token_arguments(parser)
    parser.set_defaults(handler=handle)


def _step(step: str) -> None:
    print(f"... {step}", file=sys.stderr, flush=True)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.if_empty and Registry(settings.tracking_uri).has_models():
        print(f"The registry at {settings.tracking_uri} already has models; demo not loaded.")
        return 0
    # A fresh install has no panel database yet: whether it holds accounts decides who acts.
    ensure_data_dir(settings)
    migrate(settings)
    actor = token_or_bootstrap_actor(args, settings, "`demo`")
    report = run_demo(settings, sweep_runs=args.sweep_runs, actor=actor, progress=_step)
    if not report.added_anything:
        print(f"The demo scenario is already in {settings.tracking_uri}; nothing added.")
        return 0
    print(f"Demo scenario written to {settings.tracking_uri}:")
    for line in report.versions:
        print(f"  registered {line}")
    if report.sweep_runs:
        print(f"  {report.sweep_runs} tuning runs")
    for table in report.inference_tables:
        print(f"  inference log table {table} in {settings.inference_db_url}")
    for line in report.extra:
        print(f"  {line}")
    return 0

"""`models`: every registered model with its versions, aliases, stages and champion."""

from __future__ import annotations

import argparse

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.config import Settings
from mlops_core.governance.overview import model_overview
from mlops_core.policy import load_policy
from mlops_core.stores.registry import Registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help=help_of("models"))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    registry = Registry(settings.tracking_uri)
    # Each model's champion and key metric are the ones its policy names.
    overview = model_overview(registry, load_policy(settings.policy_file))
    if args.json:
        print_json([entry.to_dict() for entry in overview])
        return 0
    if not overview:
        print("No registered models yet. Run `python -m mlops_core demo` for a demo scenario.")
        return 0
    rows = [
        [
            e.name,
            e.served_from,
            e.champion_version or "-",
            ", ".join(
                f"v{v.version}[{','.join(v.aliases + ((v.stage,) if v.stage != 'None' else ()))}]"
                if v.aliases or v.stage != "None"
                else f"v{v.version}"
                for v in e.versions
            ),
            f"{e.key_metric}={e.key_metric_value:.4f}" if e.key_metric_value is not None else "-",
        ]
        for e in overview
    ]
    print(table(["model", "served from", "champion", "versions", "champion metric"], rows))
    return 0

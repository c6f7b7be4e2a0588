"""`policy init` drafts a policy from the live registry; `policy check` validates one.

`check` exits 0 when the policy fits the registry, 1 on problems, 2 on an error (such as
a policy file that does not parse).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json
from mlops_core.config import Settings
from mlops_core.errors import ConfigError
from mlops_core.governance.policy_tools import check_policy, draft_policy
from mlops_core.policy import load_policy
from mlops_core.stores.registry import Registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("policy", help=help_of("policy"))
    actions = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="draft a policy from the registered models")
    init.add_argument("--output", type=Path, help="write the draft here instead of stdout")
    init.add_argument("--force", action="store_true", help="overwrite an existing --output")
    init.set_defaults(handler=handle_init)
    check = actions.add_parser("check", help="check a policy against the registry")
    check.add_argument("--file", type=Path, help="the policy to check (default: the one in force)")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=handle_check)


def handle_init(args: argparse.Namespace, settings: Settings) -> int:
    registry = Registry(settings.tracking_uri)
    draft = draft_policy(registry, load_policy(settings.policy_file), settings.tracking_uri)
    if args.output is None:
        print(draft)
        return 0
    if args.output.exists() and not args.force:
        raise ConfigError(f"{args.output} exists; pass --force to overwrite it.")
    args.output.write_text(draft + "\n", encoding="utf-8")
    print(
        f"Wrote a draft policy to {args.output}. Fill in the DECIDE lines, then run "
        f"`python -m mlops_core policy check --file {args.output}`."
    )
    return 0


def handle_check(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.policy_file
    if path is None:
        raise ConfigError(
            "No policy file to check: pass --file, set MLOPS_POLICY_FILE, or put policy.toml "
            "in the data folder (`python -m mlops_core policy init --output FILE` drafts one)."
        )
    policy = load_policy(path.expanduser().resolve())
    result = check_policy(Registry(settings.tracking_uri), policy)
    if args.json:
        print_json(
            {
                "policy": policy.source,
                "sha256": policy.sha256,
                "ok": result.ok,
                "problems": result.problems,
                "notes": result.notes,
            }
        )
    else:
        for problem in result.problems:
            print(f"problem: {problem}")
        for note in result.notes:
            print(f"note: {note}")
        print(
            f"{policy.source}: "
            + ("fits the registry." if result.ok else f"{len(result.problems)} problem(s).")
        )
    return 0 if result.ok else 1

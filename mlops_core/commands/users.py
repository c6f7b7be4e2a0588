"""`users`: local accounts of the embedded default (production signs in through OIDC)."""

from __future__ import annotations

import argparse
import getpass
import sys

from mlops_core.commands.output import print_json, table
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.identity import ROLES
from mlops_core.people.auth import load_users, resolve_cli_actor
from mlops_core.people.user_admin import manage_user


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help="list or add local accounts")
    actions = parser.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="accounts and their roles (never passwords)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=handle_list)
    add = actions.add_parser(
        "add", help="add an account or change its roles (an admin's action, audited)"
    )
    add.add_argument("username")
    add.add_argument(
        "--as",
        dest="as_user",
        metavar="ADMIN",
        help="the admin making the change (not needed for the very first account)",
    )
    add.add_argument("--role", action="append", choices=ROLES, required=True, dest="roles")
    add.add_argument("--email")
    add.add_argument("--name", dest="display_name")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    add.add_argument(
        "--keep-password", action="store_true", help="change roles only, keep the password"
    )
    add.set_defaults(handler=handle_add)


def _password(args: argparse.Namespace) -> str | None:
    if args.keep_password:
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {args.username}: ")
    if first != getpass.getpass("Again: "):
        raise InvalidInput("The two passwords differ; nothing was changed.")
    return first


def handle_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = resolve_cli_actor(settings, args.as_user) if args.as_user else None
    user = manage_user(
        settings,
        actor,
        args.username,
        _password(args),
        args.roles,
        email=args.email,
        display_name=args.display_name,
    )
    print(f"Saved {user.username} with roles {', '.join(sorted(user.roles))}.")
    return 0


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    users = load_users(settings.users_file)
    rows = [
        {"username": u.username, "roles": sorted(u.roles), "email": u.email}
        for u in sorted(users.values(), key=lambda u: u.username)
    ]
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"No local accounts in {settings.users_file}.")
    else:
        print(
            table(
                ["username", "roles", "email"],
                [[r["username"], ", ".join(r["roles"]), r["email"] or ""] for r in rows],
            )
        )
    return 0

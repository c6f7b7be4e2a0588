"""`users`: local accounts in the panel database (production may sign people in through OIDC)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_or_bootstrap_actor
from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.identity import ROLES, Actor
from mlops_core.people.accounts import LocalUser, list_accounts
from mlops_core.people.user_admin import (
    disable_user,
    manage_user,
    remove_user,
    reset_password,
    unlock_user,
)
from mlops_core.stores.db import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help=help_of("users"))
    actions = parser.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="accounts and their roles (never passwords)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=handle_list)

    add = _admin_parser(actions, "add", "add an account or change its roles", handle_add)
    add.add_argument("--role", action="append", choices=ROLES, dest="roles")
    add.add_argument(
        "--service-account",
        action="store_true",
        help="an account for CI: no password, signs in with an access token, requester only",
    )
    add.add_argument("--email")
    add.add_argument("--name", dest="display_name")
    _password_stdin_argument(add)
    add.add_argument(
        "--keep-password", action="store_true", help="change roles only, keep the password"
    )
    _admin_parser(actions, "remove", "delete an account and revoke its tokens", handle_remove)
    _admin_parser(actions, "disable", "stop an account's sign-ins and tokens", handle_disable)
    _admin_parser(actions, "enable", "allow a disabled account again", handle_disable)
    _admin_parser(
        actions, "unlock", "end an account's sign-in back-off from every address", handle_unlock
    )
    reset = _admin_parser(
        actions,
        "reset-password",
        "give a person a new password, signing them out everywhere",
        handle_reset_password,
    )
    _password_stdin_argument(reset)


def _admin_parser(
    actions: argparse._SubParsersAction,
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace, Settings], int],
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=f"{help_text} (an admin's action with an access token, audited; the first "
        "account of an empty store needs none)",
    )
    parser.add_argument("username")
    add_token_arguments(parser)
    parser.set_defaults(handler=handler)
    return parser


def _password_stdin_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )


def _actor(args: argparse.Namespace, settings: Settings) -> Actor | None:
    migrate(settings)
    return token_or_bootstrap_actor(args, settings, f"`users {args.users_action}`")


def _password(args: argparse.Namespace) -> str | None:
    """The password `users add` sets: none for a service account or with --keep-password."""
    if args.keep_password or args.service_account:
        return None
    return _read_password(args)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {args.username}: ")
    if first != getpass.getpass("Again: "):
        raise InvalidInput("The two passwords differ; nothing was changed.")
    return first


def handle_add(args: argparse.Namespace, settings: Settings) -> int:
    roles = args.roles or (["requester"] if args.service_account else None)
    if not roles:
        raise InvalidInput("Give the account at least one --role.")
    user = manage_user(
        settings,
        _actor(args, settings),
        args.username,
        _password(args),
        roles,
        email=args.email,
        display_name=args.display_name,
        service=args.service_account,
    )
    kind = "service account" if user.is_service else "account"
    print(f"Saved {kind} {user.username} with roles {', '.join(sorted(user.roles))}.")
    return 0


def handle_remove(args: argparse.Namespace, settings: Settings) -> int:
    user = remove_user(settings, _actor(args, settings), args.username)
    print(f"Removed {user.username}.")
    return 0


def handle_disable(args: argparse.Namespace, settings: Settings) -> int:
    disabled = args.users_action == "disable"
    user = disable_user(settings, _actor(args, settings), args.username, disabled)
    print(f"{'Disabled' if disabled else 'Enabled'} {user.username}.")
    return 0


def handle_unlock(args: argparse.Namespace, settings: Settings) -> int:
    user = unlock_user(settings, _actor(args, settings), args.username)
    print(f"Unlocked {user.username}: sign-in is open again from every address.")
    return 0


def handle_reset_password(args: argparse.Namespace, settings: Settings) -> int:
    actor = _actor(args, settings)
    user = reset_password(settings, actor, args.username, _read_password(args))
    print(f"New password set for {user.username}; their sign-in sessions have ended.")
    return 0


def _kind(user: LocalUser) -> str:
    kind = "service" if user.is_service else "person"
    return f"{kind}, disabled" if user.disabled else kind


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    users = list_accounts(settings)
    rows = [
        {
            "username": u.username,
            "roles": sorted(u.roles),
            "email": u.email,
            "service_account": u.is_service,
            "disabled": u.disabled,
        }
        for u in users
    ]
    if args.json:
        print_json(rows)
    elif not users:
        print("No local accounts yet: `users add NAME --role admin` creates the first one.")
    else:
        print(
            table(
                ["username", "roles", "email", "kind"],
                [[u.username, ", ".join(sorted(u.roles)), u.email or "", _kind(u)] for u in users],
            )
        )
    return 0

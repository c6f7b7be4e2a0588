"""`tokens`: personal access tokens for the command line and CI.

`tokens create` proves who you are with your password, not with a token (a token cannot
make a token), so it works on a machine that has no token yet. The token goes to stdout
alone, so `... tokens create ... > token-file` stores it; it is never shown again.
`tokens list` and `tokens revoke` authenticate with a token like every other command.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import TOKEN_ENV, add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.identity import ROLES
from mlops_core.people.auth import authenticate
from mlops_core.people.tokens import create_token, list_tokens, revoke_token
from mlops_core.stores.db import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokens", help=help_of("tokens"))
    actions = parser.add_subparsers(dest="tokens_action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", help="make a token with your password; prints it once, on stdout"
    )
    create.add_argument("--as", dest="as_user", required=True, metavar="USER", help="your account")
    create.add_argument("--name", required=True, help="what the token is for, e.g. 'laptop'")
    create.add_argument(
        "--scope",
        action="append",
        choices=ROLES,
        dest="scopes",
        help="a role the token may use, repeatable (default: all of your roles)",
    )
    create.add_argument(
        "--days", type=int, help="lifetime (default and most: MLOPS_TOKEN_MAX_DAYS)"
    )
    create.add_argument(
        "--for",
        dest="owner",
        metavar="SERVICE_ACCOUNT",
        help="admins: make the token of a service account (with the admin's password)",
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    create.set_defaults(handler=handle_create)

    listing = actions.add_parser("list", help="your tokens (admins: --all for everyone's)")
    listing.add_argument("--all", action="store_true", dest="everyone")
    listing.add_argument("--json", action="store_true")
    add_token_arguments(listing)
    listing.set_defaults(handler=handle_list)

    revoke = actions.add_parser("revoke", help="revoke a token at once (yours, or as an admin)")
    revoke.add_argument("token_id", type=int, metavar="ID")
    add_token_arguments(revoke)
    revoke.set_defaults(handler=handle_revoke)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"Password for {args.as_user}: ")


def handle_create(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    actor = authenticate(settings, args.as_user, _password(args))
    new = create_token(
        settings, actor, args.name, scopes=args.scopes, days=args.days, owner=args.owner
    )
    info = new.info
    print(new.secret)
    print(
        f"Access token #{info.id} {info.name!r} for {info.owner} ({', '.join(info.scopes)}), "
        f"expires {info.expires_at:%Y-%m-%d %H:%M} UTC. It is shown only now: keep it like a "
        f"password, e.g. in a file passed as --token-file or in ${TOKEN_ENV}.",
        file=sys.stderr,
    )
    return 0


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    actor = token_actor(args, settings, "`tokens list`")
    tokens = list_tokens(settings, actor, everyone=args.everyone)
    if args.json:
        print_json([t.to_dict() for t in tokens])
    elif not tokens:
        print("No access tokens.")
    else:
        rows = [
            [
                str(t.id),
                t.name,
                t.owner,
                ", ".join(t.scopes),
                t.status(),
                f"{t.expires_at:%Y-%m-%d}",
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            ]
            for t in tokens
        ]
        print(table(["id", "name", "owner", "scopes", "status", "expires", "last used"], rows))
    return 0


def handle_revoke(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    actor = token_actor(args, settings, "`tokens revoke`")
    info = revoke_token(settings, actor, args.token_id)
    print(f"Revoked access token #{info.id} {info.name!r} of {info.owner}.")
    return 0

"""Who acts on a command that changes state: the user of a personal access token.

The token comes from `--token-file PATH` or else the MLOPS_TOKEN environment variable; a
file keeps it out of the process list and shell history. `--as USER` names nobody by
itself: when given, it must be the token's user, so a script states whom it expects to act
as. Read-only commands need no token. Tokens are made with `tokens create`, which asks for
the password instead (a token cannot make a token).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.accounts import has_accounts, normalise_username
from mlops_core.people.tokens import authenticate_token

TOKEN_ENV = "MLOPS_TOKEN"


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help=f"read the access token from this file (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="refuse unless the token belongs to USER (a check, not a sign-in)",
    )


def _secret(args: argparse.Namespace) -> str | None:
    if args.token_file is None:
        return os.environ.get(TOKEN_ENV, "").strip() or None
    try:
        secret = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"Cannot read --token-file {args.token_file}: {exc.strerror}.") from None
    if not secret:
        raise InvalidInput(f"--token-file {args.token_file} is empty.")
    return secret


def token_actor(args: argparse.Namespace, settings: Settings, command: str) -> Actor:
    """The token's user, or PermissionDenied saying how to get a token."""
    secret = _secret(args)
    if secret is None:
        raise PermissionDenied(
            f"{command} changes state, so it needs an access token: set {TOKEN_ENV} or pass "
            "--token-file (make one on the panel or with `python -m mlops_core tokens create`)."
        )
    actor = authenticate_token(settings, secret)
    if args.as_user is not None and normalise_username(args.as_user) != actor.username:
        raise PermissionDenied(
            f"--as {args.as_user} does not match the access token, which is {actor.username}'s."
        )
    return actor


def token_or_bootstrap_actor(
    args: argparse.Namespace, settings: Settings, command: str
) -> Actor | None:
    """The token's user; None (the bootstrap) only on an empty account store without one.

    An empty store has nobody who could hold a token; the core then lets whoever can write
    the panel database act, once.
    """
    if _secret(args) is None and args.as_user is None and not has_accounts(settings):
        return None
    return token_actor(args, settings, command)

"""The promotion workflow from the command line, under the same rules as the panel.

Every action authenticates with an access token (`token_auth.py`); the token's user acts
with the token's scopes that their account and the access file still grant. Exit 0 when
the action went through, 1 when it went through but the outcome is not the hoped-for one
(a stale request, reconcile warnings), 2 when it was refused or failed - with the reason
on stderr.
"""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from collections.abc import Callable
from dataclasses import asdict

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.governance.promotion.apply import retry_apply
from mlops_core.governance.promotion.decide import approve, cancel, reject
from mlops_core.governance.promotion.reconcile import accept_alias, reconcile
from mlops_core.governance.promotion.rollback import rollback
from mlops_core.governance.promotion.state import OPEN, STALE, RequestView, describe, list_requests
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.rollout.reconcile import reconcile_rollouts
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
Handler = Callable[[Namespace, Settings, Actor, Registry], int]


def _parser(
    subparsers: argparse._SubParsersAction,
    name: str,
    handler: Handler,
    actor: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand that authenticates its token (when it acts) and opens the registry."""
    parser = subparsers.add_parser(name, help=help_of(name))
    if actor:
        add_token_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")

    def run(args: Namespace, settings: Settings) -> int:
        migrate(settings)
        acting = token_actor(args, settings, f"`{name}`") if actor else None
        return handler(args, settings, acting, Registry(settings.tracking_uri))

    parser.set_defaults(handler=run)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _parser(subparsers, "request", _request)
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--reason", required=True)

    p = _parser(subparsers, "approve", _approve)
    p.add_argument("--request", type=int, required=True, metavar="ID")
    p.add_argument("--comment", required=True)
    p.add_argument("--override", action="store_true", help="admins: approve despite blocking gates")
    p.add_argument("--justification", help="why the override is justified (with --override)")

    p = _parser(subparsers, "reject", _reject)
    p.add_argument("--request", type=int, required=True, metavar="ID")
    p.add_argument("--comment", required=True)

    p = _parser(subparsers, "cancel", _cancel)
    p.add_argument("--request", type=int, required=True, metavar="ID")
    p.add_argument("--reason")

    p = _parser(subparsers, "apply-retry", _retry)
    p.add_argument("--request", type=int, required=True, metavar="ID")

    p = _parser(subparsers, "rollback", _rollback)
    p.add_argument("--model", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--alias", help="default: the policy's alias for the model")

    _parser(subparsers, "reconcile", _reconcile, actor=False)

    p = _parser(subparsers, "accept-alias", _accept)
    p.add_argument("--model", required=True)
    p.add_argument("--alias", required=True)
    p.add_argument("--reason", required=True)

    p = _parser(subparsers, "requests", _list, actor=False)
    p.add_argument("--model")
    p.add_argument(
        "--open", action="store_true", help="only open ones: pending, approved, applying"
    )


def _outcome(view: RequestView, as_json: bool) -> int:
    """Print what became of a request; the exit code says whether it went as hoped."""
    if as_json:
        print_json(view.to_dict())
    elif view.needs_retry:
        print(
            f"error: {describe(view)} Retry: apply-retry --request {view.id}",
            file=sys.stderr,
        )
    else:
        print(describe(view))
    if view.needs_retry:
        return EXIT_ERROR
    return EXIT_FAILED if view.status == STALE else EXIT_OK


def _request(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    view = request_promotion(settings, registry, actor, args.model, args.version, args.reason)
    if args.json:
        print_json(
            {
                "id": view.id,
                "status": view.status,
                "target": view.alias,
                "champion_version": view.champion_version,
                "gate_summary": view.gate_summary,
                "policy_sha256": view.policy_sha256,
            }
        )
    else:
        # Only the id on stdout, so a pipeline can capture it.
        print(view.id)
        print(
            f"Request #{view.id} for {args.model} v{view.version}: gates {view.gate_summary}.",
            file=sys.stderr,
        )
    return EXIT_OK


def _approve(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    view = approve(
        settings,
        registry,
        actor,
        args.request,
        args.comment,
        override=args.override,
        justification=args.justification,
    )
    return _outcome(view, args.json)


def _reject(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    return _outcome(reject(settings, registry, actor, args.request, args.comment), args.json)


def _cancel(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    return _outcome(cancel(settings, actor, args.request, args.reason), args.json)


def _retry(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    return _outcome(retry_apply(settings, registry, actor, args.request), args.json)


def _rollback(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    view = rollback(settings, registry, actor, args.model, args.reason, args.alias)
    return _outcome(view, args.json)


def _reconcile(args: Namespace, settings: Settings, actor: Actor | None, registry: Registry) -> int:
    warnings = reconcile(settings, registry)
    # A rollout's challenger alias and tags, republished where a dead process left them.
    repairs = reconcile_rollouts(settings, registry)
    if args.json:
        print_json([asdict(w) for w in warnings] + [repair.to_dict() for repair in repairs])
    elif warnings or repairs:
        for message in [w.message for w in warnings] + [r.message for r in repairs]:
            print(f"warning: {message}")
    else:
        print("MLflow and the panel agree on every alias the panel manages.")
    return EXIT_FAILED if warnings or repairs else EXIT_OK


def _accept(args: Namespace, settings: Settings, actor: Actor, registry: Registry) -> int:
    found = accept_alias(settings, registry, actor, args.model, args.alias, args.reason)
    if args.json:
        print_json({"model": args.model, "alias": args.alias, "version": found})
    else:
        where = f"v{found}" if found else "nothing"
        print(f"Accepted: {args.alias} of {args.model} points at {where}.")
    return EXIT_OK


def _list(args: Namespace, settings: Settings, actor: Actor | None, registry: Registry) -> int:
    statuses = OPEN if args.open else None
    views = list_requests(settings, model=args.model, statuses=statuses)
    if args.json:
        print_json([v.to_dict() for v in views])
        return EXIT_OK
    if not views:
        print("No promotion requests.")
        return EXIT_OK
    rows = [
        [
            str(v.id),
            v.model_name,
            f"v{v.version}",
            f"v{v.champion_version}" if v.champion_version else "-",
            v.status,
            v.requested_by,
            v.gate_summary,
        ]
        for v in views
    ]
    print(table(["id", "model", "version", "champion", "status", "by", "gates"], rows))
    return EXIT_OK

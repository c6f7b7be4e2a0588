"""`rollout`: staged rollouts from the command line, under the same rules as the panel.

    rollout start --request ID            approvers: start the rollout of an approved request
    rollout status --model M [--json]     where the model's rollout stands, with its guardrails
    rollout tick [--model M] [--json]     evaluate and advance or roll back (cron, a scheduler)
    rollout advance --model M             approvers: leave a ready stage of a manual plan
    rollout pause|resume|abort --model M --reason TEXT   approvers

Exit 0 when it went through; `tick` exits 1 when a rollout was rolled back (so a scheduler's
log flags it), `status` 1 when the rollout has ended other than completed; 2 on errors.
"""

from __future__ import annotations

import argparse
from argparse import Namespace
from collections.abc import Callable

from mlops_core.commands.catalog import help_of
from mlops_core.commands.output import print_json, table
from mlops_core.commands.token_auth import add_token_arguments, token_actor
from mlops_core.config import Settings
from mlops_core.rollout.controls import abort, advance_stage, pause, resume
from mlops_core.rollout.progress import TickResult, tick_all
from mlops_core.rollout.start import start_rollout
from mlops_core.rollout.state import (
    COMPLETED,
    ROLLED_BACK,
    RolloutView,
    current_rollout,
    describe,
    evaluations,
)
from mlops_core.stores.db import migrate
from mlops_core.stores.registry import Registry

EXIT_OK, EXIT_FAILED = 0, 1
CONTROLS: dict[str, Callable[..., RolloutView]] = {
    "pause": pause,
    "resume": resume,
    "abort": abort,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help=help_of("rollout"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="rollout_action", required=True, metavar="ACTION")

    p = actions.add_parser("start", help="start the rollout of an approved request")
    p.add_argument("--request", type=int, required=True, metavar="ID")
    _acting(p, _start)

    p = actions.add_parser("status", help="where a model's rollout stands")
    p.add_argument("--model", required=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_status)

    p = actions.add_parser("tick", help="evaluate every running rollout once")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_tick)

    p = actions.add_parser("advance", help="leave a ready stage (plans with auto_advance off)")
    p.add_argument("--model", required=True)
    _acting(p, _advance)

    for name in CONTROLS:
        p = actions.add_parser(name, help=f"{name} the model's rollout")
        p.add_argument("--model", required=True)
        p.add_argument("--reason", required=True)
        _acting(p, _control)


def _acting(parser: argparse.ArgumentParser, handler: Callable[..., int]) -> None:
    add_token_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")

    def run(args: Namespace, settings: Settings) -> int:
        migrate(settings)
        actor = token_actor(args, settings, f"`rollout {args.rollout_action}`")
        return handler(args, settings, actor, Registry(settings.tracking_uri))

    parser.set_defaults(handler=run)


def _shown(view: RolloutView, as_json: bool) -> int:
    if as_json:
        print_json(view.to_dict())
    else:
        print(describe(view))
    return EXIT_OK


def _start(args: Namespace, settings: Settings, actor, registry: Registry) -> int:
    return _shown(start_rollout(settings, registry, actor, args.request), args.json)


def _control(args: Namespace, settings: Settings, actor, registry: Registry) -> int:
    control = CONTROLS[args.rollout_action]
    return _shown(control(settings, registry, actor, args.model, args.reason), args.json)


def _advance(args: Namespace, settings: Settings, actor, registry: Registry) -> int:
    result = advance_stage(settings, registry, actor, args.model)
    return _results([result], args.json)


def _status(args: Namespace, settings: Settings) -> int:
    migrate(settings)
    view = current_rollout(settings, args.model)
    history = evaluations(settings, view.id)
    latest = history[-1] if history else None
    if args.json:
        print_json(
            {
                **view.to_dict(),
                "describe": describe(view),
                "latest_evaluation": None
                if latest is None
                else {
                    "id": latest.id,
                    "evaluated_at": latest.evaluated_at.isoformat(timespec="seconds"),
                    "sha256": latest.sha256,
                    **latest.evidence,
                },
            }
        )
    else:
        print(describe(view))
        if latest is not None:
            print(f"Last evaluated {latest.evaluated_at:%Y-%m-%d %H:%M} UTC: {latest.summary}")
            rows = [
                [g["name"], g["status"], g["detail"]] for g in latest.evidence.get("guardrails", [])
            ]
            if rows:
                print(table(["guardrail", "status", "numbers"], rows))
    ended_badly = not view.is_active and view.status != COMPLETED
    return EXIT_FAILED if ended_badly else EXIT_OK


def _results(results: list[TickResult], as_json: bool) -> int:
    if as_json:
        print_json([r.__dict__ for r in results])
    elif not results:
        print("No rollout is running.")
    for result in [] if as_json else results:
        line = f"{result.model} (rollout #{result.rollout_id}): {result.outcome}. {result.message}"
        print(line)
        if result.publish_error:
            print(f"  warning: the registry is not updated yet: {result.publish_error}")
    return EXIT_FAILED if any(r.outcome == ROLLED_BACK for r in results) else EXIT_OK


def _tick(args: Namespace, settings: Settings) -> int:
    migrate(settings)
    registry = Registry(settings.tracking_uri)
    return _results(tick_all(settings, registry, args.model), args.json)

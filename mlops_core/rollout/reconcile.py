"""Reconciling the registry with each model's latest rollout.

What MLflow shows of a rollout (alias `challenger`, the `mlops.rollout.*` tags) is
published from the rollout row. A process killed between two of those writes, or someone
editing them by hand, leaves the registry saying something else: reconcile rewrites it
from the row and records what it found in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.rollout.publish import differences, read_publication
from mlops_core.rollout.state import RolloutView, list_rollouts
from mlops_core.rollout.transitions import lease, sync
from mlops_core.stores import audit
from mlops_core.stores.registry import Registry


@dataclass(frozen=True)
class RolloutRepair:
    model: str
    rollout_id: int
    found: list[str]
    # None: repaired; else why not (MLflow's error, a tick holding the rollout).
    problem: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "rollout_repaired" if self.problem is None else "rollout_not_repaired",
            "model": self.model,
            "rollout_id": self.rollout_id,
            "found": self.found,
            "problem": self.problem,
            "message": self.message,
        }

    @property
    def message(self) -> str:
        what = f"Rollout #{self.rollout_id} of {self.model}: the registry showed " + ", ".join(
            self.found
        )
        if self.problem:
            return f"{what}; not repaired: {self.problem}"
        return f"{what}; republished."


def _latest_per_model(settings: Settings) -> list[RolloutView]:
    latest: dict[str, RolloutView] = {}
    for view in list_rollouts(settings):
        latest.setdefault(view.model, view)
    return list(latest.values())


def reconcile_rollouts(settings: Settings, registry: Registry) -> list[RolloutRepair]:
    """Republish every model's latest rollout whose registry state differs from it."""
    repairs = []
    for view in _latest_per_model(settings):
        try:
            found = differences(view.publication(), read_publication(registry, view.model))
        except MlopsError as exc:
            repairs.append(RolloutRepair(view.model, view.id, ["an unreadable registry"], str(exc)))
            continue
        if not found:
            continue
        with lease(settings, view.id) as held:
            problem = sync(settings, registry, view) if held else "a tick holds it right now"
        if problem is None:
            audit.record(
                settings,
                audit.SYSTEM,
                "rollout_repaired",
                model=view.model,
                version=view.version,
                request_id=view.request_id,
                reason=f"The registry showed {', '.join(found)}; republished by reconcile.",
                details={"rollout_id": view.id, "found": found, "status": view.status},
            )
        repairs.append(RolloutRepair(view.model, view.id, found, problem))
    return repairs

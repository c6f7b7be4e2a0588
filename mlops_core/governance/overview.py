"""The overview: one line per registered model with its champion and what needs attention.

The champion is the version at the target the policy names for the model (an alias or a
stage); a model the policy does not cover has none, and the overview lists its aliases and
stages as MLflow has them instead of inventing one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from mlops_core.policy import Policy, describe_target
from mlops_core.stores.registry import Registry, VersionInfo


@dataclass(frozen=True)
class ModelOverview:
    name: str
    description: str
    # The alias or `stage:<Stage>` the policy serves the model from; None when it names none.
    target: str | None
    champion_version: str | None
    key_metric: str | None
    key_metric_value: float | None
    n_versions: int
    champion_changed_at: datetime | None
    last_updated: datetime | None
    versions: list[VersionInfo]
    aliases: dict[str, str] = field(default_factory=dict)
    # Version numbers by stage (Production, Staging, Archived), newest first.
    stages: dict[str, list[str]] = field(default_factory=dict)
    covered: bool = False

    @property
    def served_from(self) -> str:
        """Where the model is served from, in words; without a policy, what MLflow has."""
        if self.target:
            return describe_target(self.target)
        found = [f"alias {a} → v{v}" for a, v in sorted(self.aliases.items())]
        found += [f"stage {s}: v{', v'.join(vs)}" for s, vs in sorted(self.stages.items())]
        return "no policy" + (f" ({'; '.join(found)})" if found else "")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["champion"] = data.pop("champion_version")
        data["served_from"] = self.served_from
        return data


def model_overview(registry: Registry, policy: Policy) -> list[ModelOverview]:
    entries = []
    for model in registry.list_models(policy.serving_target):
        key_metric = policy.key_metric(model.name, tuple(model.champion_metrics))
        entries.append(
            ModelOverview(
                name=model.name,
                description=model.description,
                target=model.target,
                champion_version=model.champion.version if model.champion else None,
                key_metric=key_metric,
                key_metric_value=model.champion_metrics.get(key_metric) if key_metric else None,
                n_versions=model.n_versions,
                champion_changed_at=model.champion_changed_at,
                last_updated=model.last_updated,
                versions=registry.list_versions(model.name),
                aliases=model.aliases,
                stages=model.stages,
                covered=policy.covers(model.name),
            )
        )
    return entries

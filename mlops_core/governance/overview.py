"""The overview: one line per registered model with its champion and what needs attention."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from mlops_core.stores.registry import DEFAULT_ALIAS, Registry, VersionInfo

KEY_METRIC = "roc_auc"


@dataclass(frozen=True)
class ModelOverview:
    name: str
    description: str
    alias: str
    champion_version: str | None
    key_metric: str
    key_metric_value: float | None
    n_versions: int
    champion_changed_at: datetime | None
    last_updated: datetime | None
    versions: list[VersionInfo]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["champion"] = data.pop("champion_version")
        return data


def model_overview(registry: Registry, alias: str = DEFAULT_ALIAS) -> list[ModelOverview]:
    entries = []
    for model in registry.list_models(alias):
        entries.append(
            ModelOverview(
                name=model.name,
                description=model.description,
                alias=alias,
                champion_version=model.champion.version if model.champion else None,
                key_metric=KEY_METRIC,
                key_metric_value=model.champion_metrics.get(KEY_METRIC),
                n_versions=model.n_versions,
                champion_changed_at=model.champion_changed_at,
                last_updated=model.last_updated,
                versions=registry.list_versions(model.name),
            )
        )
    return entries

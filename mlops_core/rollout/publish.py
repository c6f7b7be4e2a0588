"""The contract with serving: a rollout's state as MLflow registry aliases and tags.

A router reads, per registered model: alias `champion` (the target the policy promotes;
all traffic not given to the challenger), alias `challenger` (the version rolling out) and
the registered-model tags `mlops.rollout.mode` (`shadow` | `split`), `mlops.rollout.traffic`
(the challenger's share, 0-100), `mlops.rollout.stage` and `mlops.rollout.id`. Without the
`challenger` alias or the mode tag, every request goes to the champion.

MLflow has no transactions, so a publication is several writes, ordered so that a process
dying between two of them never sends more traffic to the challenger than either state
meant: going live, the tags come before the alias; ending, traffic drops to 0 first.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_core.stores.registry import Registry

CHALLENGER = "challenger"
TAG_MODE = "mlops.rollout.mode"
TAG_TRAFFIC = "mlops.rollout.traffic"
TAG_STAGE = "mlops.rollout.stage"
TAG_ID = "mlops.rollout.id"


@dataclass(frozen=True)
class Publication:
    """What the registry shows of a model's rollout; `challenger` None: none running."""

    rollout_id: int | None
    stage: str | None
    challenger: str | None
    mode: str | None
    traffic: float

    @property
    def tags(self) -> dict[str, str | None]:
        return {
            TAG_ID: None if self.rollout_id is None else str(self.rollout_id),
            TAG_STAGE: self.stage,
            TAG_MODE: self.mode,
            TAG_TRAFFIC: format_traffic(self.traffic),
        }


def format_traffic(traffic: float) -> str:
    return f"{traffic:g}"


def parse_traffic(value: str | None) -> float:
    """A tag's share; anything that is not a number in [0, 100] counts as 0 (fail closed)."""
    try:
        traffic = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return traffic if 0 <= traffic <= 100 else 0.0


def read_publication(registry: Registry, model: str) -> Publication:
    aliases, tags = registry.aliases_and_tags(model)
    rollout_id = tags.get(TAG_ID)
    return Publication(
        rollout_id=int(rollout_id) if rollout_id and rollout_id.isdigit() else None,
        stage=tags.get(TAG_STAGE),
        challenger=aliases.get(CHALLENGER),
        mode=tags.get(TAG_MODE),
        traffic=parse_traffic(tags.get(TAG_TRAFFIC)),
    )


def differences(wanted: Publication, found: Publication) -> list[str]:
    """What the registry shows that the rollout does not say, one phrase per item."""
    problems = []
    if wanted.challenger != found.challenger:
        problems.append(f"alias {CHALLENGER} at {_shown(found.challenger, 'v')}")
    for key, value in wanted.tags.items():
        if found.tags[key] != value:
            problems.append(f"tag {key} = {_shown(found.tags[key])}")
    return problems


def _shown(value: str | None, prefix: str = "") -> str:
    return "nothing" if value is None else f"{prefix}{value}"


def publish(registry: Registry, model: str, wanted: Publication) -> None:
    """Write `wanted`; every write is idempotent, so publishing again finishes a half one."""
    tags = wanted.tags
    if wanted.challenger is None:
        registry.set_model_tag(model, TAG_TRAFFIC, tags[TAG_TRAFFIC] or "0")
        aliases, _ = registry.aliases_and_tags(model)
        if CHALLENGER in aliases:
            registry.delete_alias(model, CHALLENGER)
        _write_tags(registry, model, tags, skip=(TAG_TRAFFIC,))
        return
    _write_tags(registry, model, tags, skip=())
    registry.move_to(model, CHALLENGER, wanted.challenger)


def _write_tags(
    registry: Registry, model: str, tags: dict[str, str | None], skip: tuple[str, ...]
) -> None:
    _, present = registry.aliases_and_tags(model)
    for key, value in tags.items():
        if key in skip:
            continue
        if value is None:
            if key in present:
                registry.delete_model_tag(model, key)
        elif present.get(key) != value:
            registry.set_model_tag(model, key, value)

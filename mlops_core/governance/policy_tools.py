"""Drafting a policy from a live registry, and checking a policy against it.

`draft_policy` writes one `[models."name"]` table per registered model with what the
registry shows: where it is served (an alias, else the Production stage), its key metric and
that metric's direction, the values its versions logged. What only a person can decide -
thresholds, tolerances, sensitive features - is left as a commented key marked DECIDE.

`check_policy` reports, as problems (the CLI exits 1), a policy that names models the
registry does not have, targets that are not an alias or stage of the model, metrics no
version logs, `artifact:` data that the newest version's run does not have, and models whose
table gates nothing; and, as notes, the registered models no policy covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlops_core.policy import (
    KEY_METRIC_PREFERENCE,
    STAGE_PREFIX,
    Policy,
    describe_target,
    metric_direction,
    stage_of,
)
from mlops_core.redaction import redact
from mlops_core.stores.data_discovery import ARTIFACT_PREFIX
from mlops_core.stores.registry import Registry, VersionInfo, version_serving

# Alias names teams serve from, most telling first.
SERVING_ALIASES = ("production", "prod", "champion", "serving", "live", "current")
DECIDE = "DECIDE"


@dataclass(frozen=True)
class ModelFindings:
    """What the registry says about one model, for a draft."""

    name: str
    target: str | None
    target_reason: str
    versions: list[VersionInfo]
    metrics: dict[str, float]
    metrics_version: str | None
    key_metric: str | None


@dataclass
class PolicyCheck:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _serving_target(versions: list[VersionInfo], aliases: dict[str, str]) -> tuple[str | None, str]:
    for alias in SERVING_ALIASES:
        if alias in aliases:
            return alias, f"alias {alias} → v{aliases[alias]}"
    if len(aliases) == 1:
        alias, version = next(iter(aliases.items()))
        return alias, f"its only alias, {alias} → v{version}"
    in_production = [v.version for v in versions if v.stage == "Production"]
    if in_production:
        return f"{STAGE_PREFIX}Production", f"v{in_production[0]} is in stage Production"
    if aliases:
        found = ", ".join(f"{a} → v{v}" for a, v in sorted(aliases.items()))
        return None, f"several aliases ({found}) and none is a usual serving name"
    return None, "no alias and no version in Production"


def model_findings(registry: Registry, name: str, aliases: dict[str, str]) -> ModelFindings:
    versions = registry.list_versions(name)
    target, reason = _serving_target(versions, aliases)
    served = version_serving(versions, target) if target else None
    source = served or (versions[0] if versions else None)
    metrics = registry.get_run(source.run_id).metrics if source and source.run_id else {}
    key = next((m for m in KEY_METRIC_PREFERENCE if m in metrics), None)
    key = key or next(iter(sorted(metrics)), None)
    return ModelFindings(
        name=name,
        target=target,
        target_reason=reason,
        versions=versions,
        metrics=metrics,
        metrics_version=source.version if source else None,
        key_metric=key,
    )


def _toml_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _model_table(found: ModelFindings, policy: Policy) -> list[str]:
    key = _toml_key(found.name)
    lines = [f"[models.{key}]"]
    if found.target:
        lines.append(f'target = "{found.target}"  # found: {found.target_reason}')
    else:
        lines.append(f'# target = "production"  # {DECIDE}: {found.target_reason}')
    lines.append(f"approvers_required = 1  # {DECIDE}: distinct approvers, never the requester")
    if found.key_metric:
        direction = policy.direction(found.key_metric)
        value = found.metrics[found.key_metric]
        lines.append(
            f'key_metric = "{found.key_metric}"  # {direction} is better; '
            f"v{found.metrics_version} logged {value:.4g}"
        )
    lines.append(f"\n[models.{key}.min_metrics]")
    lines.append(f"# {DECIDE}: the least a candidate must reach (the most, for lower-is-better)")
    for metric in _gate_metrics(found):
        bound = "at most" if metric_direction(metric) == "lower" else "at least"
        lines.append(f"# {metric} = {found.metrics[metric]:.4g}  # {bound}")
    lines.append(f"\n[models.{key}.max_regression]")
    lines.append(f"# {DECIDE}: how much worse than the served version a candidate may be")
    for metric in _gate_metrics(found)[:1]:
        lines.append(f"# {metric} = 0.0")
    lines.append(
        f"\n# [models.{key}.fairness]  # {DECIDE}: columns whose groups must be treated alike"
        '\n# sensitive_features = ["..."]'
        "\n# [models." + key + ".fairness.thresholds]\n# demographic_parity_difference = 0.1"
    )
    return lines


def _gate_metrics(found: ModelFindings) -> list[str]:
    first = [found.key_metric] if found.key_metric else []
    others = [m for m in KEY_METRIC_PREFERENCE if m in found.metrics and m not in first]
    return first + others[:2]


def draft_policy(registry: Registry, policy: Policy, tracking_uri: str) -> str:
    """A policy file for every registered model, thresholds left for a person to decide."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Drafted by `python -m mlops_core policy init` from {redact(tracking_uri)} at {now}.",
        f"# Every line marked {DECIDE} needs a person's decision; uncomment and set the",
        "# thresholds, then run `python -m mlops_core policy check`. A model's table states",
        "# where it is promoted to (target: an alias, or stage:Production) and its gates.",
        "# Data: reference and evaluation sets are found without keys here, in this order:",
        "# [models.<name>.data] reference/evaluation, the run's mlflow.log_input datasets,",
        "# the mlflow.evaluate table, artifact:reference/reference.parquet.",
        "",
    ]
    for model in registry.list_models():
        found = model_findings(registry, model.name, model.aliases)
        lines += _model_table(found, policy) + [""]
    if len(lines) == 8:
        lines.append("# The registry has no registered model yet.")
    return "\n".join(lines)


def _logged_metrics(registry: Registry, versions: list[VersionInfo]) -> set[str]:
    logged: set[str] = set()
    for version in versions:
        if version.run_id:
            logged |= set(registry.get_run(version.run_id).metrics)
    return logged


def _check_model(
    registry: Registry, policy: Policy, name: str, aliases: dict[str, str], result: PolicyCheck
) -> None:
    problems = result.problems
    model_policy = policy.for_model(name)
    versions = registry.list_versions(name)
    target = model_policy.serving_target
    if target is None:
        problems.append(f"{name}: names no target; set target = an alias or stage:Production.")
    elif stage_of(target) is None and target not in aliases:
        # A first promotion sets the alias: a note, it may be intended.
        result.notes.append(
            f"{name}: target {describe_target(target)} is not set on any version yet "
            f"(aliases: {', '.join(sorted(aliases)) or 'none'}); check the spelling."
        )
    logged = _logged_metrics(registry, versions)
    named = {*model_policy.min_metrics, *model_policy.max_regression}
    if model_policy.states_key_metric:
        named.add(model_policy.key_metric)
    for metric in sorted(named - logged):
        problems.append(f"{name}: no version logs the metric {metric!r}.")
    gates = (
        model_policy.min_metrics
        or model_policy.max_regression
        or (model_policy.fairness and model_policy.fairness.thresholds)
        or (model_policy.drift and model_policy.drift.max_drift_share is not None)
        or model_policy.require_schema_match
    )
    if not gates:
        problems.append(
            f"{name}: the policy gates nothing (no min_metrics, max_regression, fairness "
            "thresholds, drift or schema): any candidate would pass."
        )
    newest = versions[0] if versions else None
    stated = model_policy.data.model_fields_set
    for key in ("reference", "evaluation"):
        location = getattr(model_policy.data, key)
        if key not in stated or not location.startswith(ARTIFACT_PREFIX):
            continue
        if newest is None or not newest.run_id:
            problems.append(f"{name}: data.{key} is a run artifact, but no version has a run.")
            continue
        path = location[len(ARTIFACT_PREFIX) :]
        folder, _, file = path.rpartition("/")
        if path not in registry.list_artifacts(newest.run_id, folder or None) and file:
            problems.append(
                f"{name}: data.{key} = {location!r} is not an artifact of v{newest.version}'s "
                f"run {newest.run_id}."
            )


def check_policy(registry: Registry, policy: Policy) -> PolicyCheck:
    """Problems (exit 1) and notes of `policy` against the live registry."""
    result = PolicyCheck()
    models = {m.name: m for m in registry.list_models()}
    for name in sorted(policy.models):
        if name not in models:
            result.problems.append(f"{name}: no registered model of that name.")
            continue
        _check_model(registry, policy, name, models[name].aliases, result)
    uncovered = [n for n in models if not policy.covers(n)]
    if uncovered:
        result.notes.append(
            "Not covered (can be looked at, not promoted): " + ", ".join(sorted(uncovered))
        )
    if policy.states_defaults:
        for name in sorted(set(models) - set(policy.models)):
            _check_model(registry, policy, name, models[name].aliases, result)
    return result

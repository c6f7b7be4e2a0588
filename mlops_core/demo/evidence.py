"""Evidence the demo seeds: fairness reports and behaviour checks on every version, a drift
check per week and a quality check of each model's inference log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pandas as pd

from mlops_core.config import Settings
from mlops_core.demo.data import SPECS
from mlops_core.evidence.behaviour.run import run_checks
from mlops_core.evidence.behaviour.store import log_check_report, stored_check_report
from mlops_core.evidence.fairness_evidence import has_stored_report, record_fairness_evidence
from mlops_core.evidence.monitoring import (
    check_model_drift,
    drift_history,
    drift_report,
    log_drift_check,
    model_windows,
)
from mlops_core.evidence.quality_runs import quality_history, run_quality_check
from mlops_core.identity import Actor
from mlops_core.policy import load_policy
from mlops_core.stores.registry import Registry

# Rows per side of the Evidently report stored with each seeded drift check.
DEMO_REPORT_SAMPLE = 2_000


def _with_installed_policy(settings: Settings) -> Settings:
    """run_demo's settings predate the example policy it installs in the data folder, and
    evidence computed without its thresholds would never match the policy."""
    installed = settings.data_dir / "policy.toml"
    if settings.policy_file is None and installed.is_file():
        return replace(settings, policy_file=installed)
    return settings


def seed_fairness_evidence(
    settings: Settings, actor: Actor, models: Iterable[str] | None = None
) -> list[str]:
    """Store evidence for every version of the demo models whose run has none yet."""
    settings = _with_installed_policy(settings)
    registry = Registry(settings.tracking_uri)
    added = []
    for model in models if models is not None else [spec.name for spec in SPECS]:
        for version in registry.list_versions(model):
            if version.run_id is None or has_stored_report(registry, version.run_id):
                continue
            record_fairness_evidence(settings, registry, model, version.version, actor)
            added.append(f"fairness evidence for {model} v{version.version}")
    return added


def seed_behaviour_checks(settings: Settings, actor: Actor) -> list[str]:
    """Run and store the behaviour checks of every demo version that has no stored report
    (each runs the version in its own sandboxed process, a few seconds each)."""
    settings = _with_installed_policy(settings)
    registry = Registry(settings.tracking_uri)
    added = []
    for spec in SPECS:
        for version in registry.list_versions(spec.name):
            if stored_check_report(settings, spec.name, version.version).report is not None:
                continue
            report = run_checks(settings, spec.name, version.version)
            log_check_report(settings, report, actor)
            added.append(f"behaviour checks of {spec.name} v{version.version}")
    return added


def seed_drift_history(
    settings: Settings, actor: Actor, models: list[str] | None = None
) -> list[str]:
    """One logged check per weekly window of each model's current data against the
    champion's reference; windows already in the history are skipped."""
    settings = _with_installed_policy(settings)
    registry = Registry(settings.tracking_uri)
    policy = load_policy(settings.policy_file)
    if models is None:
        models = [
            m.name for m in registry.list_models() if policy.for_model(m.name).data.has_current
        ]
    added = []
    for model in models:
        logged = set(drift_history(registry, model)["window_start"])
        for window in model_windows(settings, model):
            if pd.Timestamp(window[0]) in logged:
                continue
            check = check_model_drift(settings, registry, model, window=window)
            report = drift_report(check, DEMO_REPORT_SAMPLE)
            log_drift_check(settings, registry, check, report, actor)
            added.append(f"drift check of {model} for the week of {window[0]:%Y-%m-%d}")
    return added


def seed_quality_checks(settings: Settings, actor: Actor) -> list[str]:
    """One logged quality check per demo model whose history has none yet."""
    settings = _with_installed_policy(settings)
    registry = Registry(settings.tracking_uri)
    policy = load_policy(settings.policy_file)
    added = []
    for spec in SPECS:
        model_policy = policy.for_model(spec.name)
        if model_policy.monitoring is None or not model_policy.data.has_current:
            continue
        if not quality_history(registry, spec.name).empty:
            continue
        run_quality_check(settings, spec.name, actor=actor, registry=registry)
        added.append(f"quality check of {spec.name}")
    return added

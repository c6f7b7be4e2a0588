"""Behaviour check reports as evidence on the version's MLflow run, and read back by gates.

`log_check_report` stores `checks/report.json` (the source of truth), records its digest
in the audit log, then logs the `checks.*` metrics and the `mlops.checks.status` tag
("completed" or "failed"). `stored_check_report` gives the report back only when it is the
panel's own (its bytes match the recorded digest) or, under a policy with
`accept_external_evidence`, has no recorded digest at all (a report logged by CI with
MLflow's client); a report that contradicts the record was replaced and is never used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from mlflow.entities import Metric, RunTag

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput
from mlops_core.evidence.behaviour.report import REPORT_ARTIFACT, STATUS_TAG, CheckReport
from mlops_core.evidence.fairness_evidence import model_policy, resolve_version
from mlops_core.evidence.stored_evidence import (
    stored_bytes,
    storing,
    trust_stored,
    upload_evidence,
)
from mlops_core.identity import Actor
from mlops_core.people.access import require_evidence_writer
from mlops_core.stores.registry import Registry

WHAT = "behaviour check report"
NOT_STORED = "no behaviour checks are stored"


class StoredChecks(NamedTuple):
    """The version's stored report when it may be used, else None and why not; `source`
    names the evidence (artifact, run, and how its integrity was established)."""

    report: CheckReport | None
    why_not: str
    source: str

    @property
    def nothing_stored(self) -> bool:
        """No report at all, as opposed to one the panel may not use."""
        return self.report is None and self.why_not.startswith(NOT_STORED)


def log_check_report(settings: Settings, report: CheckReport, actor: Actor) -> None:
    """Store the report on its version's run under the actor's name (a role above viewer).

    Logging again replaces report.json and adds a new point to each metric."""
    require_evidence_writer(actor, "store behaviour check evidence in MLflow")
    registry = Registry(settings.tracking_uri)
    version = resolve_version(registry, report.model, report.version)
    if version.run_id != report.run_id:
        raise InvalidInput(
            f"The report is of run {report.run_id}, but {report.model} v{version.version} "
            f"comes from run {version.run_id}: check the version again."
        )
    run_id = upload_evidence(
        settings, registry, version, REPORT_ARTIFACT, report.to_json(), actor, WHAT
    )
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in report.metrics().items()]
    with storing(registry, run_id, WHAT):
        registry.client.log_batch(
            run_id, metrics=metrics, tags=[RunTag(STATUS_TAG, report.status_tag())]
        )


def stored_check_report(settings: Settings, model: str, version: str) -> StoredChecks:
    registry = Registry(settings.tracking_uri)
    found = resolve_version(registry, model, version)
    if found.run_id is None:
        return StoredChecks(None, f"{model} v{found.version} has no run to hold checks", "")
    where = f"{REPORT_ARTIFACT} of run {found.run_id}"
    data = stored_bytes(registry, found.run_id, REPORT_ARTIFACT, WHAT)
    if data is None:
        why = f"{NOT_STORED} for {model} v{found.version}"
        return StoredChecks(None, why, where)
    policy = model_policy(settings, model)
    trust = trust_stored(settings, policy, model, found.run_id, REPORT_ARTIFACT, data)
    if not trust.usable:
        return StoredChecks(None, trust.why_not, where)
    try:
        report = CheckReport.from_json(data)
    except InvalidInput as exc:
        return StoredChecks(None, f"the stored {where} cannot be read ({exc})", where)
    if (report.model, report.version) != (model, found.version):
        why = f"the stored {where} is the report of {report.model} v{report.version}"
        return StoredChecks(None, why, where)
    return StoredChecks(report, "", trust.source)

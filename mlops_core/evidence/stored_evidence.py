"""Evidence the panel stores on a version's MLflow run, and the trust it puts in it read back.

Storing uploads the artifact first (a failed upload records nothing), then records the
sha256 of its bytes in the audit log (`stores.evidence_digests`). Reading back, bytes are
trusted when they match the digest the panel recorded; bytes without a recorded digest
only when the policy accepts external evidence (CI's reports, say); bytes that contradict
the record never: they replaced the panel's own evidence. Fairness reports and behaviour
check reports both go through here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from mlflow.exceptions import MlflowException
from requests.exceptions import RequestException

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, RegistryUnavailable
from mlops_core.identity import Actor
from mlops_core.policy import ModelPolicy
from mlops_core.stores.evidence_digests import UNRECORDED, check_evidence, record_evidence
from mlops_core.stores.registry import Registry, VersionInfo, mlflow_error_message

EXTERNAL = "external evidence (not produced by the panel)"


@contextmanager
def storing(registry: Registry, run_id: str, what: str) -> Iterator[None]:
    """MLflow and file-system errors as one clear error naming the run and `what`."""
    try:
        yield
    except (MlflowException, RequestException) as exc:
        raise mlflow_error_message(exc, registry.tracking_uri) from None
    except OSError as exc:
        # A local artifact store reports a full disk or a read-only folder this way.
        raise RegistryUnavailable(f"Could not store the {what} on run {run_id}: {exc}") from None


def evidence_run(version: VersionInfo, what: str) -> str:
    if version.run_id is None:
        raise InvalidInput(
            f"{version.model_name} v{version.version} has no run to store {what} on."
        )
    return version.run_id


def upload_evidence(
    settings: Settings,
    registry: Registry,
    version: VersionInfo,
    artifact: str,
    data: bytes,
    actor: Actor,
    what: str,
) -> str:
    """Upload `data` as `artifact` of the version's run and record its digest; the run id."""
    run_id = evidence_run(version, what)
    path = PurePosixPath(artifact)
    with tempfile.TemporaryDirectory(prefix="mlops-evidence-") as folder:
        local = Path(folder) / path.name
        local.write_bytes(data)
        with storing(registry, run_id, what):
            registry.client.log_artifact(run_id, str(local), str(path.parent))
    record_evidence(settings, actor, version.model_name, version.version, run_id, {artifact: data})
    return run_id


def has_artifact(registry: Registry, run_id: str, artifact: str) -> bool:
    return artifact in registry.list_artifacts(run_id, str(PurePosixPath(artifact).parent))


def stored_bytes(registry: Registry, run_id: str, artifact: str, what: str) -> bytes | None:
    """The bytes of `artifact` on the run, or None when there is no such artifact."""
    if not has_artifact(registry, run_id, artifact):
        return None
    with tempfile.TemporaryDirectory(prefix="mlops-evidence-") as folder:
        with storing(registry, run_id, what):
            local = registry.client.download_artifacts(run_id, artifact, folder)
        return Path(local).read_bytes()


class Trust(NamedTuple):
    """Whether stored bytes may be used: `source` names them, `why_not` says why not;
    `rejected` bytes contradict the panel's record (replaced evidence)."""

    usable: bool
    source: str = ""
    why_not: str = ""
    rejected: bool = False


def trust_stored(
    settings: Settings,
    policy: ModelPolicy,
    model: str,
    run_id: str,
    artifact: str,
    data: bytes,
) -> Trust:
    check = check_evidence(settings.db_url, model, run_id, artifact, data)
    # Accepting external evidence never lets through bytes that contradict a recorded
    # digest: those replaced the panel's own evidence.
    external = check.integrity == UNRECORDED and policy.accept_external_evidence
    if check.verified:
        return Trust(True, source=f"stored evidence: {check.summary}")
    if external:
        return Trust(
            True,
            source=f"{EXTERNAL}: {artifact} of run {run_id}, accepted by the policy "
            "(accept_external_evidence)",
        )
    return Trust(False, why_not=check.summary, rejected=True)

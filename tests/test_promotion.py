"""The promotion workflow end to end on real stores, with the panel DB on SQLite and PostgreSQL.

MLflow runs on a private copy of the demo registry (aliases move here); artifacts, the
inference log and the policy are the seeded demo's, read only.
"""

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlops_core.config import Settings, load_settings
from mlops_core.errors import ActionRefused, InvalidInput, MlopsError, PermissionDenied
from mlops_core.governance import decision_record
from mlops_core.governance.promotion.apply import retry_apply
from mlops_core.governance.promotion.decide import allowed_actions, approve, cancel, reject
from mlops_core.governance.promotion.reconcile import accept_alias, reconcile
from mlops_core.governance.promotion.rollback import plan_rollback, rollback
from mlops_core.governance.promotion.state import (
    TAG_APPROVED_AT,
    TAG_APPROVED_BY,
    TAG_REQUEST,
    RequestView,
    describe,
    get_request,
    open_requests,
)
from mlops_core.governance.promotion.submit import request_promotion
from mlops_core.identity import Actor
from mlops_core.stores import audit, db
from mlops_core.stores.registry import Registry
from tests.servers import free_port

CHURN = "churn-predictor"
REQUESTER = Actor("requester", frozenset({"requester"}))
APPROVER = Actor("approver", frozenset({"approver"}))
CAROL = Actor("carol", frozenset({"approver"}))
ADMIN = Actor("admin", frozenset({"admin"}))
VIEWER = Actor("viewer", frozenset({"viewer"}))
# Both roles: may request, may approve - but never their own request.
DAVE = Actor("dave", frozenset({"requester", "approver"}))
BLOCK_ALIAS_WRITES = [
    f"CREATE TRIGGER block_alias_{op} BEFORE {op} ON registered_model_aliases "
    "BEGIN SELECT RAISE(ABORT, 'registry under maintenance'); END"
    for op in ("INSERT", "UPDATE")
]


def copy_demo_env(demo: Settings, folder: Path) -> dict[str, str]:
    """Environment for a private, consistent copy of the demo's MLflow database."""
    folder.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(demo.tracking_uri.removeprefix("sqlite:///"))
    target = sqlite3.connect(folder / "mlflow.db")
    source.backup(target)
    source.close()
    target.close()
    return {
        "MLOPS_DATA_DIR": str(folder),
        "MLOPS_INFERENCE_DB_URL": demo.inference_db_url,
        "MLOPS_POLICY_FILE": str(demo.policy_file),
    }


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(copy_demo_env(demo_settings, tmp_path_factory.mktemp("promotion-store")))


@pytest.fixture(scope="module")
def registry(store: Settings) -> Registry:
    return Registry(store.tracking_uri)


@pytest.fixture
def settings(store: Settings, registry: Registry, panel_db_url: str) -> Settings:
    """A fresh panel database, and the champion back at v1."""
    registry.move_alias(CHURN, "champion", "1")
    db.upgrade(panel_db_url)
    return replace(store, db_url=panel_db_url)


def champion(registry: Registry) -> str:
    return registry.version_by_alias(CHURN, "champion").version


def actions(settings: Settings, request_id: int | None = None) -> list[str]:
    filters = audit.AuditFilter(request_id=request_id)
    return [e.action for e in reversed(audit.list_events(settings.db_url, filters))]


def request(settings: Settings, registry: Registry, version: str = "3") -> RequestView:
    return request_promotion(settings, registry, REQUESTER, CHURN, version, "better ROC AUC, fair")


def test_request_approve_apply_freezes_checks_tags_and_audits(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    assert (pending.status, pending.champion_version, pending.approvals_required) == (
        "pending",
        "1",
        1,
    )
    assert pending.gate_summary == "7 passed"
    assert [r.id for r in open_requests(settings)] == [pending.id]

    applied = approve(settings, registry, APPROVER, pending.id, "Evidence is clear.")
    assert applied.status == "applied" and applied.applied_at and applied.last_error is None
    assert champion(registry) == "3"
    tags = registry.get_version(CHURN, "3").tags
    assert tags[TAG_REQUEST] == str(pending.id)
    assert tags[TAG_APPROVED_BY] == "approver" and tags[TAG_APPROVED_AT]
    assert (
        applied.decisions[0].comment == "Evidence is clear."
        and len(applied.decisions[0].gates) == 7
    )
    assert actions(settings, pending.id) == [
        "request",
        "gates_evaluated",
        "gates_evaluated",
        "approve",
        "apply",
    ]
    # A second click, or a retry, finds nothing left to do.
    with pytest.raises(ActionRefused, match="already decided"):
        approve(settings, registry, CAROL, pending.id, "me too")
    with pytest.raises(ActionRefused, match="already decided"):
        retry_apply(settings, registry, APPROVER, pending.id)
    assert actions(settings).count("apply") == 1
    assert audit.verify(settings.db_url).ok
    assert reconcile(settings, registry) == []


def test_roles_four_eyes_and_required_text(settings: Settings, registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="requester role"):
        request_promotion(settings, registry, VIEWER, CHURN, "3", "why not")
    with pytest.raises(InvalidInput, match="reason"):
        request_promotion(settings, registry, DAVE, CHURN, "3", "  ")
    with pytest.raises(ActionRefused, match="already is the champion"):
        request_promotion(settings, registry, DAVE, CHURN, "1", "again")
    own = request_promotion(settings, registry, DAVE, CHURN, "3", "mine")
    with pytest.raises(ActionRefused, match="four eyes"):
        approve(settings, registry, DAVE, own.id, "looks fine to me")
    with pytest.raises(PermissionDenied, match="approver role"):
        approve(settings, registry, REQUESTER, own.id, "ok")
    with pytest.raises(PermissionDenied, match="admin role"):
        approve(settings, registry, APPROVER, own.id, "ok", override=True)
    with pytest.raises(InvalidInput, match="comment"):
        reject(settings, registry, APPROVER, own.id, "")
    with pytest.raises(ActionRefused, match="Only dave"):
        cancel(settings, REQUESTER, own.id)
    assert allowed_actions(DAVE, own) == ["cancel"]
    assert allowed_actions(APPROVER, own) == ["approve", "reject"]
    assert allowed_actions(ADMIN, own) == ["approve", "reject", "override", "cancel"]
    assert get_request(settings, own.id).status == "pending"
    # An admin's own request is no exception.
    cancel(settings, ADMIN, own.id, "admin withdraws it")
    mine = request_promotion(settings, registry, ADMIN, CHURN, "3", "admin asks")
    with pytest.raises(ActionRefused, match="four eyes"):
        approve(settings, registry, ADMIN, mine.id, "ok")


def test_one_open_request_per_alias_and_cancel(settings: Settings, registry: Registry) -> None:
    first = request(settings, registry)
    with pytest.raises(ActionRefused, match=f"Request #{first.id} .* still open"):
        request(settings, registry, "2")
    cancelled = cancel(settings, REQUESTER, first.id, "wrong version")
    assert cancelled.status == "cancelled"
    with pytest.raises(ActionRefused, match="cancelled"):
        cancel(settings, REQUESTER, first.id)
    with pytest.raises(ActionRefused, match="cancelled"):
        approve(settings, registry, APPROVER, first.id, "too late")
    second = request(settings, registry, "2")
    assert second.status == "pending" and second.gate_summary == "6 passed, 1 failed"
    assert actions(settings, first.id)[-1] == "cancel"


def test_a_failing_gate_blocks_until_an_admin_overrides_it(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry, "2")
    with pytest.raises(ActionRefused, match="demographic_parity_difference \\(failed\\)"):
        approve(settings, registry, APPROVER, pending.id, "AUC is great")
    with pytest.raises(InvalidInput, match="justification"):
        approve(settings, registry, ADMIN, pending.id, "ok", override=True)
    applied = approve(
        settings,
        registry,
        ADMIN,
        pending.id,
        "Accepting the disparity for four weeks.",
        override=True,
        justification="Regulator-approved exception RX-12; fix scheduled.",
    )
    assert applied.status == "applied" and champion(registry) == "2"
    (decision,) = applied.decisions
    assert decision.override and decision.justification.startswith("Regulator-approved")
    (event,) = audit.list_events(settings.db_url, audit.AuditFilter(action="override"))
    assert event.details["overridden_gates"] == ["fairness gender demographic_parity_difference"]
    assert event.details["justification"] == decision.justification


def test_reject_ends_the_request_even_when_mlflow_is_down(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    dead = Registry(f"http://127.0.0.1:{free_port()}")
    rejected = reject(settings, dead, CAROL, pending.id, "Wait for the Q3 data.")
    assert rejected.status == "rejected" and rejected.decided_at
    (gate,) = rejected.decisions[0].gates
    assert gate.status == "not_evaluated" and "Cannot reach" in gate.reason
    with pytest.raises(ActionRefused, match="already decided \\(rejected\\)"):
        approve(settings, registry, APPROVER, pending.id, "but I like it")
    assert champion(registry) == "1"
    assert actions(settings, pending.id)[-1] == "reject"


def test_two_distinct_approvers_when_the_policy_asks(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        settings.policy_file.read_text() + '\n[models."churn-predictor"]\napprovers_required = 2\n'
    )
    settings = replace(settings, policy_file=policy)
    pending = request(settings, registry)
    first = approve(settings, registry, APPROVER, pending.id, "one")
    assert first.status == "pending" and first.approvers == ["approver"]
    assert champion(registry) == "1"
    with pytest.raises(ActionRefused, match="approver already decided"):
        approve(settings, registry, APPROVER, pending.id, "one again")
    second = approve(settings, registry, CAROL, pending.id, "two")
    assert second.status == "applied" and second.approvers == ["approver", "carol"]
    assert registry.get_version(CHURN, "3").tags[TAG_APPROVED_BY] == "approver, carol"


def test_a_champion_changed_meanwhile_makes_the_request_stale(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    # Someone removes the champion alias outside the panel; with no champion left the
    # regression gates have nothing to compare with, so the approval itself goes through.
    registry.client.delete_registered_model_alias(CHURN, "champion")
    stale = approve(settings, registry, APPROVER, pending.id, "ok")
    assert stale.status == "stale" and registry.version_by_alias(CHURN, "champion") is None
    assert actions(settings, pending.id)[-1] == "stale"
    assert "no longer points at v1" in describe(stale)
    assert request(settings, registry).champion_version is None


def test_rollback_restores_the_previous_champion_once(
    settings: Settings, registry: Registry
) -> None:
    with pytest.raises(ActionRefused, match="No promotion"):
        rollback(settings, registry, APPROVER, CHURN, "nothing applied yet")
    pending = request(settings, registry)
    approve(settings, registry, APPROVER, pending.id, "ok")
    plan = plan_rollback(settings, registry, CHURN)
    assert (plan.current_version, plan.target_version, plan.refusal) == ("3", "1", None)
    with pytest.raises(PermissionDenied):
        rollback(settings, registry, REQUESTER, CHURN, "incident")
    rolled = rollback(settings, registry, APPROVER, CHURN, "Incident 4711: bad scores")
    assert rolled.status == "rolled_back" and champion(registry) == "1"
    (event,) = audit.list_events(settings.db_url, audit.AuditFilter(action="rollback"))
    assert (event.version, event.details["from_version"], event.reason) == (
        "1",
        "3",
        "Incident 4711: bad scores",
    )
    with pytest.raises(ActionRefused, match="No promotion"):
        rollback(settings, registry, APPROVER, CHURN, "again")
    assert reconcile(settings, registry) == []


def test_rollback_refuses_to_undo_a_later_move(settings: Settings, registry: Registry) -> None:
    pending = request(settings, registry)
    approve(settings, registry, APPROVER, pending.id, "ok")
    registry.move_alias(CHURN, "champion", "2")
    with pytest.raises(ActionRefused, match="points at v2, not at v3"):
        rollback(settings, registry, APPROVER, CHURN, "incident")
    assert champion(registry) == "2"


def test_reconcile_reports_an_alias_moved_outside_the_panel_once(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    approve(settings, registry, APPROVER, pending.id, "ok")
    registry.move_alias(CHURN, "champion", "2")
    for _ in range(2):
        (warning,) = reconcile(settings, registry)
        assert (warning.kind, warning.expected_version, warning.actual_version) == (
            "alias_moved",
            "3",
            "2",
        )
    assert actions(settings).count("reconcile_warning") == 1
    with pytest.raises(PermissionDenied):
        accept_alias(settings, registry, APPROVER, CHURN, "champion", "fine")
    accept_alias(settings, registry, ADMIN, CHURN, "champion", "Hotfix by on-call.")
    assert reconcile(settings, registry) == []


def test_mlflow_failing_mid_apply_leaves_the_request_approved_and_retryable(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    store = sqlite3.connect(settings.tracking_uri.removeprefix("sqlite:///"))
    try:
        for statement in BLOCK_ALIAS_WRITES:
            store.execute(statement)
        store.commit()
        failed = approve(settings, registry, APPROVER, pending.id, "ok")
        assert failed.status == "approved" and failed.needs_retry
        assert "registry under maintenance" in failed.last_error
        assert champion(registry) == "1"
        (warning,) = reconcile(settings, registry)
        assert warning.kind == "apply_pending" and warning.request_id == pending.id
        # Retrying against a tracking server that does not answer fails the same way.
        dead = Registry(f"http://127.0.0.1:{free_port()}")
        still = retry_apply(settings, dead, APPROVER, pending.id)
        assert still.status == "approved" and "Cannot reach" in still.last_error
    finally:
        for op in ("INSERT", "UPDATE"):
            store.execute(f"DROP TRIGGER IF EXISTS block_alias_{op}")
        store.commit()
        store.close()
    applied = retry_apply(settings, registry, APPROVER, pending.id)
    assert applied.status == "applied" and applied.last_error is None
    assert champion(registry) == "3"
    assert actions(settings, pending.id)[-3:] == ["apply_failed", "apply_failed", "apply"]


@pytest.mark.postgres
def test_concurrent_approvals_on_postgresql_give_exactly_one_decision(
    store: Settings, registry: Registry, pg_url: str
) -> None:
    registry.move_alias(CHURN, "champion", "1")
    db.upgrade(pg_url)
    settings = replace(store, db_url=pg_url)
    pending = request(settings, registry)
    # Two double clicks and two other approvers, all at once.
    approvers = [APPROVER, APPROVER, CAROL, ADMIN]
    barrier = threading.Barrier(len(approvers))
    outcomes: list[object] = [None] * len(approvers)

    def click(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = approve(
                settings, registry, approvers[index], pending.id, f"click {index}"
            )
        except MlopsError as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=click, args=(i,)) for i in range(len(approvers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [o for o in outcomes if isinstance(o, RequestView)]
    refused = [o for o in outcomes if isinstance(o, ActionRefused)]
    assert len(applied) == 1 and applied[0].status == "applied", outcomes
    assert len(refused) == 3 and all("already decided" in str(e) for e in refused), refused
    with db.session_factory(pg_url)() as session:
        decisions = session.scalar(select(func.count()).select_from(db.Decision))
    assert decisions == 1
    assert actions(settings).count("apply") == 1 and audit.verify(pg_url).ok
    assert champion(registry) == "3"


def test_decision_record_holds_the_evidence_and_escapes_user_text(
    settings: Settings, registry: Registry
) -> None:
    reason = "<script>alert(1)</script> | [click](http://evil)"
    pending = request_promotion(settings, registry, REQUESTER, CHURN, "3", reason)
    approve(settings, registry, APPROVER, pending.id, "Fine & fair.")
    record = decision_record.build_record(settings, registry, pending.id)
    roc = record.metrics.set_index("metric").loc["roc_auc"]
    assert decision_record.verdict(roc["regression"]) == "better"
    assert roc["champion"] == pytest.approx(0.724, abs=0.01)
    assert [e.action for e in record.events][-1] == "apply"
    page = decision_record.to_html(record)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Fine &amp; fair." in page and record.events[-1].hash in page
    text = decision_record.to_markdown(record)
    assert "\\<script\\>" in text and "\\[click\\]" in text and "\\|" in text
    assert "| fairness gender demographic\\_parity\\_difference | passed |" in text

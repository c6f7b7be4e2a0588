"""The promotion workflow end to end on real stores, with the panel DB on SQLite and PostgreSQL.

MLflow runs on a private copy of the demo registry (aliases move here); artifacts, the
inference log and the policy are the seeded demo's, read only.
"""

import random
import sqlite3
import statistics
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlops_core.config import Settings, load_settings
from mlops_core.errors import (
    ActionRefused,
    InvalidInput,
    MlopsError,
    PermissionDenied,
    RegistryUnavailable,
)
from mlops_core.evidence.behaviour.report import REPORT_ARTIFACT
from mlops_core.governance import decision_record
from mlops_core.governance.promotion.apply import APPLY_TIMEOUT, retry_apply
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
from mlops_core.stores.evidence_digests import EVIDENCE_RECORDED
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


def carry_check_digests(source: Settings, target: Settings) -> None:
    """Record in `target`'s panel database the digests `source`'s holds of the demo's
    behaviour check reports. The copy reads the same report files; without their digests
    the panel could not vouch for them and every checks gate would be "not evaluated".
    (Fairness evidence needs none: without a digest it is recomputed.)"""
    recorded = audit.AuditFilter(action=EVIDENCE_RECORDED)
    for event in reversed(audit.list_events(source.db_url, recorded)):
        if REPORT_ARTIFACT in event.details.get("artifacts", {}):
            audit.record(
                target,
                Actor(event.actor, frozenset({"admin"})),
                EVIDENCE_RECORDED,
                model=event.model_name,
                version=event.version,
                details=event.details,
            )


def copy_demo_env(demo: Settings, folder: Path) -> dict[str, str]:
    """Environment for a private, consistent copy of the demo's MLflow database, its panel
    database holding the digests of the demo's behaviour checks."""
    folder.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(demo.tracking_uri.removeprefix("sqlite:///"))
    target = sqlite3.connect(folder / "mlflow.db")
    source.backup(target)
    source.close()
    target.close()
    env = {
        "MLOPS_DATA_DIR": str(folder),
        "MLOPS_INFERENCE_DB_URL": demo.inference_db_url,
        "MLOPS_POLICY_FILE": str(demo.policy_file),
    }
    copy = load_settings(env)
    db.upgrade(copy.db_url)
    carry_check_digests(demo, copy)
    return env


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(copy_demo_env(demo_settings, tmp_path_factory.mktemp("promotion-store")))


@pytest.fixture(scope="module")
def registry(store: Settings) -> Registry:
    return Registry(store.tracking_uri)


def with_panel_db(store: Settings, url: str, folder: Path) -> Settings:
    """The store on another panel database, with that database's own audit anchors."""
    db.upgrade(url)
    moved = replace(store, db_url=url, audit_anchor_file=folder / "audit-anchors.jsonl")
    carry_check_digests(store, moved)
    return moved


@pytest.fixture
def settings(store: Settings, registry: Registry, panel_db_url: str, tmp_path: Path) -> Settings:
    """A fresh panel database, and the champion back at v1."""
    registry.move_to(CHURN, "champion", "1")
    return with_panel_db(store, panel_db_url, tmp_path)


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
    assert pending.gate_summary == "11 passed"
    assert [r.id for r in open_requests(settings)] == [pending.id]

    applied = approve(settings, registry, APPROVER, pending.id, "Evidence is clear.")
    assert applied.status == "applied" and applied.applied_at and applied.last_error is None
    assert champion(registry) == "3"
    tags = registry.get_version(CHURN, "3").tags
    assert tags[TAG_REQUEST] == str(pending.id)
    assert tags[TAG_APPROVED_BY] == "approver" and tags[TAG_APPROVED_AT]
    assert (
        applied.decisions[0].comment == "Evidence is clear."
        and len(applied.decisions[0].gates) == 11
    )
    assert actions(settings, pending.id) == [
        "request",
        "gates_evaluated",
        "gates_evaluated",
        "approve",
        "apply_started",
        "apply",
    ]
    # A second click, or a retry, finds nothing left to do.
    with pytest.raises(ActionRefused, match="already decided"):
        approve(settings, registry, CAROL, pending.id, "me too")
    with pytest.raises(ActionRefused, match="already decided"):
        retry_apply(settings, registry, APPROVER, pending.id)
    assert actions(settings).count("apply") == 1
    assert audit.verify(settings).ok
    assert reconcile(settings, registry) == []


def test_roles_four_eyes_and_required_text(settings: Settings, registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="requester role"):
        request_promotion(settings, registry, VIEWER, CHURN, "3", "why not")
    with pytest.raises(InvalidInput, match="reason"):
        request_promotion(settings, registry, DAVE, CHURN, "3", "  ")
    with pytest.raises(ActionRefused, match="already is at the alias champion"):
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
    assert allowed_actions(settings, DAVE, own) == ["cancel"]
    assert allowed_actions(settings, APPROVER, own) == ["approve", "reject"]
    assert allowed_actions(settings, ADMIN, own) == ["approve", "reject", "override", "cancel"]
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
    assert (
        second.status == "pending" and second.gate_summary == "9 passed, 1 failed, 1 not evaluated"
    )
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
    assert event.details["overridden_gates"] == [
        "fairness gender demographic_parity_difference",
        "live_comparison",
    ]
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
    registry.move_to(CHURN, "champion", "2")
    with pytest.raises(ActionRefused, match="points at v2, not at v3"):
        rollback(settings, registry, APPROVER, CHURN, "incident")
    assert champion(registry) == "2"


def test_reconcile_reports_an_alias_moved_outside_the_panel_once(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    approve(settings, registry, APPROVER, pending.id, "ok")
    registry.move_to(CHURN, "champion", "2")
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
    assert actions(settings, pending.id)[-6:] == [
        "apply_started",
        "apply_failed",
        "apply_started",
        "apply_failed",
        "apply_started",
        "apply",
    ]


@pytest.mark.postgres
def test_concurrent_approvals_on_postgresql_give_exactly_one_decision(
    store: Settings, registry: Registry, pg_url: str, tmp_path: Path
) -> None:
    registry.move_to(CHURN, "champion", "1")
    settings = with_panel_db(store, pg_url, tmp_path)
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
    assert actions(settings).count("apply") == 1 and audit.verify(settings).ok
    assert champion(registry) == "3"


# Only the metric gates, so that an approval reaches its apply quickly.
METRIC_GATES_ONLY = """
[defaults]
target = "champion"
[defaults.min_metrics]
roc_auc = 0.70
"""
MOVE_DELAY = 0.1


class SlowAliasRegistry(Registry):
    """The real registry, moving aliases slowly enough for a cancel to arrive meanwhile."""

    def move_to(self, name: str, alias: str, version: str) -> None:
        time.sleep(MOVE_DELAY)
        super().move_to(name, alias, version)


class KilledAfterMove(Registry):
    """The process dies between moving the alias and tagging the version."""

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        raise SystemExit("killed after the alias moved")


class KilledBeforeMove(Registry):
    def move_to(self, name: str, alias: str, version: str) -> None:
        raise SystemExit("killed before the alias moved")


class TagsRefused(Registry):
    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        raise RegistryUnavailable("MLflow refused the version tags.")


def _race(settings: Settings, slow: Registry, request_id: int, offset: float) -> dict:
    """Approve and, `offset` seconds later, cancel; each side's view or refusal."""
    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def act(name: str, call) -> None:
        barrier.wait()
        try:
            outcomes[name] = call()
        except MlopsError as exc:
            outcomes[name] = exc

    def cancelling() -> RequestView:
        time.sleep(offset)
        return cancel(settings, REQUESTER, request_id, "changed my mind")

    threads = [
        threading.Thread(
            target=act,
            args=("approve", lambda: approve(settings, slow, APPROVER, request_id, "ok")),
        ),
        threading.Thread(target=act, args=("cancel", cancelling)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _claimed_after(settings: Settings, request_id: int, started: datetime) -> list[float]:
    """Seconds from `started` to the apply claiming the request ([] if it never did)."""
    filters = audit.AuditFilter(request_id=request_id, action="apply_started")
    return [
        (e.created_at - started).total_seconds()
        for e in audit.list_events(settings.db_url, filters)
    ]


def test_a_cancel_racing_an_approval_is_all_or_nothing(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(METRIC_GATES_ONLY)
    settings = replace(settings, policy_file=policy)
    slow = SlowAliasRegistry(settings.tracking_uri)
    rng = random.Random(20260105)
    seen: Counter[str] = Counter()
    # How long an approval takes to claim its request here, learnt as the rounds go: the
    # cancel fires 0-150 ms into a span around that moment (a cancel itself takes some
    # tens of ms), so some land before the claim and some while the alias moves.
    claim_times = [0.2]
    for _ in range(20):
        pending = request(settings, registry)
        started = db.utcnow()
        aim = max(0.0, statistics.median(claim_times) - 0.1)
        outcomes = _race(settings, slow, pending.id, aim + rng.uniform(0, 0.15))
        claim_times += _claimed_after(settings, pending.id, started)
        final = get_request(settings, pending.id)
        told_approver, told_canceller = outcomes["approve"], outcomes["cancel"]
        seen[final.status] += 1
        if final.status == "cancelled":
            assert champion(registry) == "1", outcomes
            assert "apply" not in actions(settings, pending.id)
            assert isinstance(told_canceller, RequestView) and told_canceller.status == "cancelled"
            # The approver hears "cancelled": refused before deciding, or told after it.
            assert (
                isinstance(told_approver, ActionRefused) and "cancelled" in str(told_approver)
            ) or told_approver.status == "cancelled", outcomes
        else:
            assert final.status == "applied" and champion(registry) == "3", outcomes
            assert actions(settings, pending.id).count("apply") == 1
            assert isinstance(told_approver, RequestView) and told_approver.status == "applied"
            assert isinstance(told_canceller, ActionRefused), outcomes
        assert reconcile(settings, registry) == []
        if final.status == "applied":
            rollback(settings, registry, APPROVER, CHURN, "next round of the race")
    # Both sides of the race were hit, or the test proved nothing.
    assert set(seen) == {"cancelled", "applied"}, seen
    assert "reconcile_warning" not in actions(settings) and audit.verify(settings).ok


def test_an_apply_killed_after_moving_the_alias_is_completed_by_reconcile(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    with pytest.raises(SystemExit):
        approve(settings, KilledAfterMove(settings.tracking_uri), APPROVER, pending.id, "ok")
    stuck = get_request(settings, pending.id)
    assert stuck.status == "applying" and stuck.is_open and champion(registry) == "3"
    assert "is being applied" in describe(stuck)
    with pytest.raises(ActionRefused, match="being applied right now; too late to cancel"):
        cancel(settings, REQUESTER, pending.id)
    with pytest.raises(ActionRefused, match="still open"):
        request(settings, registry, "2")

    assert reconcile(settings, registry) == []
    done = get_request(settings, pending.id)
    assert done.status == "applied" and done.applied_at
    assert registry.get_version(CHURN, "3").tags[TAG_REQUEST] == str(pending.id)
    (event,) = audit.list_events(
        settings.db_url, audit.AuditFilter(request_id=pending.id, action="apply")
    )
    assert event.actor == "system" and event.details["completed_by"] == "reconcile"
    assert actions(settings, pending.id)[-2:] == ["apply_started", "apply"]
    assert reconcile(settings, registry) == []
    assert "reconcile_warning" not in actions(settings) and audit.verify(settings).ok


def test_an_apply_killed_before_moving_the_alias_becomes_retryable_once_stopped(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    with pytest.raises(SystemExit):
        approve(settings, KilledBeforeMove(settings.tracking_uri), APPROVER, pending.id, "ok")
    assert get_request(settings, pending.id).status == "applying" and champion(registry) == "1"
    with pytest.raises(ActionRefused, match="being applied right now"):
        retry_apply(settings, registry, APPROVER, pending.id)
    # Until it has been quiet for longer than any apply takes, it may still be in flight.
    assert reconcile(settings, registry) == []
    assert get_request(settings, pending.id).status == "applying"

    later = db.utcnow() + APPLY_TIMEOUT + timedelta(seconds=1)
    (warning,) = reconcile(settings, registry, now=later)
    assert warning.kind == "apply_pending" and "stopped before moving" in warning.message
    assert get_request(settings, pending.id).needs_retry
    applied = retry_apply(settings, registry, APPROVER, pending.id)
    assert applied.status == "applied" and champion(registry) == "3"
    assert reconcile(settings, registry) == [] and audit.verify(settings).ok


def test_tags_failing_after_the_move_never_report_the_apply_as_failed(
    settings: Settings, registry: Registry
) -> None:
    pending = request(settings, registry)
    view = approve(settings, TagsRefused(settings.tracking_uri), APPROVER, pending.id, "ok")
    assert view.status == "applying" and view.needs_retry and champion(registry) == "3"
    assert "stopped after moving champion" in describe(view)
    assert "refused the version tags" in view.last_error
    assert allowed_actions(settings, APPROVER, view) == ["retry_apply"]
    applied = retry_apply(settings, registry, APPROVER, pending.id)
    assert applied.status == "applied" and applied.last_error is None
    assert registry.get_version(CHURN, "3").tags[TAG_REQUEST] == str(pending.id)
    assert actions(settings, pending.id)[-4:] == [
        "apply_started",
        "apply_failed",
        "apply_started",
        "apply",
    ]
    assert reconcile(settings, registry) == []


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
    assert "overflow-wrap:anywhere" in page  # a long reason wraps in its cell
    text = decision_record.to_markdown(record)
    assert "\\<script\\>" in text and "\\[click\\]" in text and "\\|" in text
    assert "| fairness gender demographic\\_parity\\_difference | passed |" in text

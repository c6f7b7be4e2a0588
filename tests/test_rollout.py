"""Staged rollouts end to end: traffic through examples/router.py into an inference log,
`tick` evaluating it, the registry contract the router follows, on real MLflow stores."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from examples.router import sklearn_scorer
from mlops_core.config import Settings, load_settings
from mlops_core.errors import ActionRefused, NotFound, PermissionDenied
from mlops_core.governance.promotion.apply import retry_apply
from mlops_core.governance.promotion.state import get_request
from mlops_core.rollout.controls import abort, advance_stage, pause, resume
from mlops_core.rollout.progress import tick_all, tick_rollout
from mlops_core.rollout.publish import TAG_TRAFFIC, Publication, read_publication
from mlops_core.rollout.reconcile import reconcile_rollouts
from mlops_core.rollout.start import start_rollout
from mlops_core.rollout.state import evaluations, get_rollout
from mlops_core.rollout.traffic import bucket
from mlops_core.stores import audit
from mlops_core.stores.registry import Registry
from tests.rollout_traffic import (
    APPROVER,
    MODEL,
    REQUESTER,
    Traffic,
    approved_request,
    approved_rollout,
    clean_registry,
    rollout_settings,
    stage,
    started,
)
from tests.test_promotion import copy_demo_env

THREE_STAGES = (
    stage("shadow", "shadow", 0, requests=60)
    + stage("canary", "split", 25, requests=60)
    + stage("half", "split", 50, requests=60, labelled=60, quality=True)
)
CANARY_FIRST = stage("canary", "split", 25, requests=60) + stage(
    "half", "split", 50, requests=60, labelled=60, quality=True
)


@pytest.fixture(scope="module")
def store(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(copy_demo_env(demo_settings, tmp_path_factory.mktemp("rollout-store")))


@pytest.fixture(scope="module")
def registry(store: Settings) -> Registry:
    return Registry(store.tracking_uri)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'panel.db'}"


def actions(settings: Settings, request_id: int) -> list[str]:
    events = audit.list_events(settings.db_url, audit.AuditFilter(request_id=request_id))
    return [e.action for e in reversed(events)]


def test_a_good_challenger_advances_through_every_stage_to_champion(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    clean_registry(registry)
    settings = rollout_settings(store, tmp_path, sqlite_db, THREE_STAGES)
    request_id = approved_request(settings, registry)
    # Approval did not move the champion, nor may a plain apply: the rollout will.
    assert registry.version_by_alias(MODEL).version == "1"
    with pytest.raises(ActionRefused, match="rollout start --request"):
        retry_apply(settings, registry, APPROVER, request_id)
    rollout = start_rollout(settings, registry, APPROVER, request_id)
    assert get_request(settings, rollout.request_id).status == "rolling_out"
    assert read_publication(registry, MODEL) == Publication(rollout.id, "shadow", "3", "shadow", 0)

    traffic = Traffic(settings)
    traffic.send(70)
    log = traffic.log()
    # Shadow: the champion serves every request, the challenger scores each one too.
    assert len(log) == 140 and log.groupby("model_version")["served"].all().to_dict() == {
        "1": True,
        "3": False,
    }
    (held,) = tick_all(settings, registry)
    assert held.outcome == "advanced" and get_rollout(settings, rollout.id).stage.name == "canary"
    assert read_publication(registry, MODEL) == Publication(rollout.id, "canary", "3", "split", 25)

    traffic.send(300)
    canary = traffic.log().iloc[140:]
    served_by_challenger = canary.loc[canary.model_version == "3", "request_id"]
    # The split follows the stable bucket exactly: the router and the core agree.
    assert set(served_by_challenger) == {r for r in canary.request_id if bucket(r) < 25}
    assert 0.15 < len(served_by_challenger) / len(canary) < 0.35
    assert tick_rollout(settings, registry, rollout.id).outcome == "advanced"

    traffic.send(200)
    waiting = tick_rollout(settings, registry, rollout.id)
    assert waiting.outcome == "held" and "labelled rows" in waiting.message
    traffic.label_all()
    done = tick_rollout(settings, registry, rollout.id)
    assert done.outcome == "promoted", done
    assert registry.version_by_alias(MODEL).version == "3"
    assert read_publication(registry, MODEL) == Publication(rollout.id, "completed", None, None, 0)
    assert get_request(settings, rollout.request_id).status == "applied"
    quality = evaluations(settings, rollout.id)[-1].evidence["guardrails"][-1]
    assert quality["name"] == "quality_vs_champion" and quality["status"] == "pass"
    trail = actions(settings, rollout.request_id)
    assert trail[trail.index("rollout_started") :].count("rollout_advanced") == 2
    assert trail[-3:] == ["apply_started", "apply", "rollout_completed"]
    assert tick_all(settings, registry) == [] and audit.verify(settings).ok


def _failing_after(requests: int):
    """Version 3 fails once it has scored `requests` requests (a dependency giving way)."""
    scored = {"n": 0}

    def scorer_for(uri: str, model: str, version: str):
        real = sklearn_scorer(uri, model, version)
        if version != "3":
            return real

        def score(features):
            scored["n"] += len(features)
            if scored["n"] > requests:
                raise TimeoutError("feature store timed out")
            return real(features)

        return score

    return scorer_for


def test_a_challenger_with_errors_is_rolled_back_at_the_canary_stage(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    settings, rollout = started(store, registry, tmp_path, sqlite_db, THREE_STAGES)
    traffic = Traffic(settings, scorer_for=_failing_after(70))
    traffic.send(70)
    assert tick_rollout(settings, registry, rollout.id).outcome == "advanced"
    traffic.send(300)
    result = tick_rollout(settings, registry, rollout.id)
    assert result.outcome == "rolled_back" and result.stage == "canary"
    assert "error_rate breached: 100.00% of" in result.message
    assert registry.version_by_alias(MODEL).version == "1"
    assert read_publication(registry, MODEL) == Publication(
        rollout.id, "rolled_back", None, None, 0
    )
    assert get_request(settings, rollout.request_id).status == "rolled_back"
    (event,) = audit.list_events(
        settings.db_url,
        audit.AuditFilter(request_id=rollout.request_id, action="rollout_rolled_back"),
    )
    (breach,) = event.details["breaches"]
    assert (
        breach["name"] == "error_rate" and breach["observed"] == 1.0 and breach["threshold"] == 0.05
    )
    # Routing follows at once: every request goes to the champion again.
    traffic.send(20)
    assert set(traffic.log().iloc[-20:].model_version) == {"1"}


def _useless_challenger(uri: str, model: str, version: str):
    """Version 3 answers each request with the score of the one before: the same
    distribution of scores, no information about this request."""
    real = sklearn_scorer(uri, model, version)
    if version != "3":
        return real
    return lambda features: np.roll(real(features), 1)


def test_a_challenger_worse_on_quality_is_rolled_back_once_labels_arrive(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    settings, rollout = started(store, registry, tmp_path, sqlite_db, CANARY_FIRST)
    traffic = Traffic(settings, scorer_for=_useless_challenger)
    traffic.send(300)
    assert tick_rollout(settings, registry, rollout.id).outcome == "advanced"
    traffic.send(300)
    assert tick_rollout(settings, registry, rollout.id).outcome == "held"
    traffic.label_all()
    result = tick_rollout(settings, registry, rollout.id)
    assert result.outcome == "rolled_back" and "quality_vs_champion breached" in result.message
    quality = evaluations(settings, rollout.id)[-1].evidence["guardrails"][-1]
    numbers = quality["numbers"]
    assert numbers["verdict"] == "worse" and numbers["ci_high"] < 0
    assert numbers["champion_value"] > 0.7 and numbers["challenger_value"] < 0.65
    assert registry.version_by_alias(MODEL).version == "1"


def test_concurrent_ticks_on_postgresql_advance_a_stage_once(
    store: Settings, registry: Registry, pg_url: str, tmp_path: Path
) -> None:
    settings, rollout = started(store, registry, tmp_path, pg_url, THREE_STAGES)
    Traffic(settings).send(70)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def tick() -> None:
        barrier.wait()
        outcomes.append(tick_rollout(settings, registry, rollout.id).outcome)

    threads = [threading.Thread(target=tick) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("advanced") == 1, outcomes
    assert set(outcomes) <= {"advanced", "busy", "held"}
    after = get_rollout(settings, rollout.id)
    assert after.stage_index == 1 and after.published
    assert actions(settings, rollout.request_id).count("rollout_advanced") == 1
    assert audit.verify(settings).ok


class KilledBeforeTraffic(Registry):
    """The process dies after some of a publication's tags and before its traffic."""

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        if key == TAG_TRAFFIC:
            raise SystemExit("killed between two MLflow writes")
        super().set_model_tag(name, key, value)


def test_a_tick_killed_between_two_mlflow_writes_is_repaired_by_reconcile(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    settings, rollout = started(store, registry, tmp_path, sqlite_db, THREE_STAGES)
    Traffic(settings).send(70)
    with pytest.raises(SystemExit):
        tick_rollout(settings, KilledBeforeTraffic(settings.tracking_uri), rollout.id)
    half = read_publication(registry, MODEL)
    # The stage's name and mode went out, its traffic did not: the router still sends 0%.
    assert (half.stage, half.mode, half.traffic) == ("canary", "split", 0)
    assert not get_rollout(settings, rollout.id).published

    (repair,) = reconcile_rollouts(settings, registry)
    assert repair.problem is None and "tag mlops.rollout.traffic = 0" in repair.message
    assert read_publication(registry, MODEL) == Publication(rollout.id, "canary", "3", "split", 25)
    assert get_rollout(settings, rollout.id).published
    assert reconcile_rollouts(settings, registry) == []
    assert actions(settings, rollout.request_id)[-1] == "rollout_repaired"


def test_approvers_pause_resume_and_abort_with_a_reason(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    settings, rollout = started(store, registry, tmp_path, sqlite_db, THREE_STAGES)
    with pytest.raises(PermissionDenied):
        pause(settings, registry, REQUESTER, MODEL, "not mine to pause")
    paused = pause(settings, registry, APPROVER, MODEL, "holiday freeze")
    assert paused.status == "paused" and paused.reason == "holiday freeze"
    Traffic(settings).send(70)
    # Ready, but paused: it holds.
    assert tick_rollout(settings, registry, rollout.id).outcome == "held"
    with pytest.raises(ActionRefused, match="is paused; cannot pause"):
        pause(settings, registry, APPROVER, MODEL, "again")
    assert resume(settings, registry, APPROVER, MODEL, "freeze over").status == "running"
    aborted = abort(settings, registry, APPROVER, MODEL, "business changed its mind")
    assert aborted.status == "aborted" and get_request(settings, rollout.request_id).status == (
        "rolled_back"
    )
    assert read_publication(registry, MODEL) == Publication(rollout.id, "aborted", None, None, 0)
    with pytest.raises(NotFound, match="has no rollout running"):
        abort(settings, registry, APPROVER, MODEL, "twice")


def test_the_bucket_is_stable_and_uniform() -> None:
    assert bucket("req-1") == bucket("req-1") and bucket("req-1") != bucket("req-2")
    buckets = np.array([bucket(f"r{i}") for i in range(20_000)])
    assert buckets.min() >= 0 and buckets.max() < 100
    assert abs((buckets < 10).mean() - 0.10) < 0.01


def test_a_manual_plan_waits_for_an_approver_to_advance_a_ready_stage(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    clean_registry(registry)
    settings = rollout_settings(store, tmp_path, sqlite_db, THREE_STAGES, auto_advance=False)
    rollout = approved_rollout(settings, registry)
    with pytest.raises(
        ActionRefused, match="Stage shadow is not ready: waiting: inference_log not evaluated"
    ):
        advance_stage(settings, registry, APPROVER, MODEL)
    Traffic(settings).send(70)
    held = tick_rollout(settings, registry, rollout.id)
    assert held.outcome == "held" and held.message.startswith("ready")
    with pytest.raises(PermissionDenied):
        advance_stage(settings, registry, REQUESTER, MODEL)
    advanced = advance_stage(settings, registry, APPROVER, MODEL)
    assert advanced.outcome == "advanced" and advanced.stage == "canary"
    (event,) = audit.list_events(
        settings.db_url, audit.AuditFilter(request_id=rollout.request_id, action="rollout_advanced")
    )
    assert event.actor == "approver"


def test_a_champion_moved_during_the_rollout_makes_it_stale_instead_of_clobbering(
    store: Settings, registry: Registry, sqlite_db: str, tmp_path: Path
) -> None:
    settings, rollout = started(
        store, registry, tmp_path, sqlite_db, stage("shadow", "shadow", 0, requests=60)
    )
    Traffic(settings).send(70)
    registry.move_to(MODEL, "champion", "2")  # someone outside the panel
    result = tick_rollout(settings, registry, rollout.id)
    assert result.outcome == "stale" and result.status == "stale"
    assert registry.version_by_alias(MODEL).version == "2"
    assert get_request(settings, rollout.request_id).status == "stale"
    assert read_publication(registry, MODEL) == Publication(rollout.id, "stale", None, None, 0)

"""The worker as a real process: a notification surviving a killed worker, two workers on
PostgreSQL sharing the schedule; and MLflow's webhook signature checked against MLflow's
own signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import signal
import time
import uuid
from pathlib import Path

from mlflow.webhooks.delivery import _generate_hmac_signature

from mlops_core.config import Settings, load_settings
from mlops_core.identity import Actor
from mlops_core.stores import audit, db, deliveries, job_runs
from mlops_core.worker.signing import verify_mlflow
from tests.conftest import settings_for
from tests.pg import fresh_pg_url
from tests.receiver import receiver
from tests.servers import free_port, worker

WEBHOOK_SECRET = "w" * 40
HOOK_SECRET = "h" * 40
JOBS_OFF = (
    'reconcile = "off"\nregistry_poll = "off"\ndrift = "off"\naudit_verify = "off"\n'
    'rollout_tick = "off"\n'
)
ALICE = Actor("alice", frozenset({"requester"}), auth_method="token")


def worker_env(folder: Path, schedule: str, **extra: str) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.toml").write_text(f"[schedule]\n{schedule}")
    return {
        "MLOPS_DATA_DIR": str(folder),
        "MLOPS_MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TEST_HOOK_SECRET": HOOK_SECRET,
        **extra,
    }


def signed(
    body: bytes, secret: str = WEBHOOK_SECRET, stamp: int | None = None, delivery: str | None = None
) -> dict[str, str]:
    """Headers as MLflow sends them, signed with MLflow's own function."""
    delivery = delivery or str(uuid.uuid4())
    stamp = str(int(time.time()) if stamp is None else stamp)
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, body.decode()),
    }


def test_verification_matches_mlflows_signing_exactly() -> None:
    body = b'{"entity": "model_version", "action": "created"}'
    headers = {k.lower(): v for k, v in signed(body).items()}
    assert verify_mlflow(WEBHOOK_SECRET, headers, body, time.time()).problem is None
    digest = base64.b64decode(headers["x-mlflow-signature"].split(",", 1)[1])
    content = f"{headers['x-mlflow-delivery-id']}.{headers['x-mlflow-timestamp']}.".encode() + body
    assert digest == hmac.new(WEBHOOK_SECRET.encode(), content, hashlib.sha256).digest()


def hook_config(folder: Path, port: int) -> None:
    (folder / "notifications.toml").write_text(
        f'[[channels]]\nname = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\n'
        'secret_env = "TEST_HOOK_SECRET"\nretry_base_seconds = 0.5\nmax_attempts = 50\n'
    )


def wait_until(condition, timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_killed_before_delivering_leaves_the_notification_to_the_next_once(
    tmp_path: Path,
) -> None:
    env = worker_env(tmp_path / "data", f'notifications = "1s"\n{JOBS_OFF}')
    settings = load_settings(env)
    db.upgrade(settings.db_url)
    port = free_port()
    hook_config(settings.data_dir, port)
    audit.record(settings, ALICE, "request", model="m", version="2", request_id=3, reason="go")

    def attempts() -> int:
        log = deliveries.delivery_log(settings.db_url)
        return log[0].attempts if log else 0

    with worker(env) as (_base, process):
        # The receiver is down: the first worker only fails, and is then killed outright.
        assert wait_until(lambda: attempts() >= 1)
        process.send_signal(signal.SIGKILL)
        process.wait()
    with receiver(port) as hook, worker(env):
        hook.wait_for(1)
        time.sleep(2.5)
    [got] = hook.received
    assert got.signed_with(HOOK_SECRET) and got.json["request_id"] == 3
    [logged] = deliveries.delivery_log(settings.db_url)
    assert logged.status == "delivered" and logged.attempts >= 2


def test_two_workers_on_postgresql_run_each_slot_once(tmp_path: Path) -> None:
    with fresh_pg_url() as url:
        env = worker_env(
            tmp_path / "data",
            'notifications = "1s"\nreconcile = "2s"\nregistry_poll = "off"\ndrift = "off"\n'
            'audit_verify = "off"\nrollout_tick = "off"\n',
            MLOPS_DB_URL=url,
            MLOPS_AUDIT_KEY="a" * 40,
        )
        settings: Settings = settings_for(
            tmp_path / "data", MLOPS_DB_URL=url, MLOPS_AUDIT_KEY="a" * 40
        )
        with worker(env), worker(env):
            time.sleep(6)
        for job in ("notifications", "reconcile"):
            runs = job_runs.runs_of(settings.db_url, job)
            slots = [r.slot for r in runs]
            assert len(runs) >= 3 and len(slots) == len(set(slots)), job
            assert all(r.outcome == "ok" for r in runs), [r.error for r in runs]

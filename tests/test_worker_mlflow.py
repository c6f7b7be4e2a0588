"""The worker beside a real `mlflow server` whose registry webhook points at it: a new
version gets its gate evidence without anyone clicking, an alias moved outside the panel
is announced at once, forged or replayed deliveries are refused; /healthz and /metrics."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlparse

import pytest
import requests
from cryptography.fernet import Fernet
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from mlops_core.commands.cli import main
from mlops_core.config import load_settings
from mlops_core.governance.promotion.reconcile import accept_alias
from mlops_core.governance.version_gates import stored_gates
from mlops_core.identity import Actor
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.stores import db
from mlops_core.stores.registry import Registry
from tests.receiver import receiver
from tests.servers import mlflow_server, worker
from tests.test_tokens import demo_token
from tests.test_worker_process import HOOK_SECRET, JOBS_OFF, signed, worker_env

MODEL = "webhook-model"
ADMIN = Actor("admin", frozenset({"admin"}))
POLICY = f"""
[models."{MODEL}"]
target = "champion"

[models."{MODEL}".min_metrics]
roc_auc = 0.7
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("worker-mlflow")
    server_env = {
        # Webhooks to a worker on this machine, over plain HTTP: a test set-up only.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    }
    with (
        mlflow_server(
            f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", extra_env=server_env
        ) as tracking,
        receiver() as hook,
    ):
        env = worker_env(
            folder / "data", f'notifications = "1s"\n{JOBS_OFF}', MLFLOW_TRACKING_URI=tracking
        )
        (folder / "data" / "policy.toml").write_text(
            (folder / "data" / "policy.toml").read_text() + POLICY
        )
        (folder / "data" / "notifications.toml").write_text(
            f'[[channels]]\nname = "hook"\nkind = "webhook"\nurl = "{hook.url}"\n'
            'secret_env = "TEST_HOOK_SECRET"\nevents = ["alias.moved_outside"]\n'
        )
        settings = load_settings(env)
        db.upgrade(settings.db_url)
        create_demo_accounts(settings)
        with worker(env) as (base, _process):
            yield base, env, hook


def wait_for(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    return None


def new_version(client: MlflowClient, roc_auc: float) -> str:
    experiment = client.get_experiment_by_name("training") or client.get_experiment(
        client.create_experiment("training")
    )
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, "roc_auc", roc_auc)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return version.version


def test_registered_versions_get_gate_evidence_and_outside_alias_moves_are_announced(
    stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    base, env, hook = stack
    settings = load_settings(env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLOPS_TOKEN", demo_token(settings, "admin"))
    url = f"{base}/mlflow/webhook"
    assert main(["webhooks", "register", "--url", url]) == 0
    assert "sends registry events" in capsys.readouterr().out
    # Registering again updates the one webhook instead of adding a second.
    assert main(["webhooks", "register", "--url", url]) == 0
    client = MlflowClient(settings.tracking_uri)
    assert [h.url for h in client.list_webhooks()] == [url]

    client.create_registered_model(MODEL)
    first = new_version(client, 0.81)
    gates = wait_for(lambda: stored_gates(settings.db_url, MODEL, first))
    assert gates is not None and gates.trigger == "model_version.created"
    [minimum] = [g for g in gates.results if g.name == "min roc_auc"]
    assert (minimum.status, minimum.observed) == ("passed", 0.81)

    client.set_registered_model_alias(MODEL, "champion", first)
    accept_alias(settings, Registry(settings.tracking_uri), ADMIN, MODEL, "champion", "initial")
    second = new_version(client, 0.65)
    assert wait_for(lambda: stored_gates(settings.db_url, MODEL, second))
    client.set_registered_model_alias(MODEL, "champion", second)
    [alert] = hook.wait_for(1)
    assert alert.signed_with(HOOK_SECRET)
    body = alert.json
    assert (body["type"], body["model"], body["version"]) == ("alias.moved_outside", MODEL, second)


def test_health_and_metrics_in_the_prometheus_format(stack) -> None:
    base, _env, _hook = stack
    assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
    assert wait_for(lambda: "notifications" in requests.get(f"{base}/metrics", timeout=5).text)
    families = {
        f.name: f
        for f in text_string_to_metric_families(requests.get(f"{base}/metrics", timeout=5).text)
    }
    runs = {
        s.labels["job"]: s.value
        for s in families["mlops_worker_job_runs"].samples
        if s.name.endswith("_total")
    }
    assert runs["notifications"] >= 1 and runs["drift"] == 0
    assert {"mlops_notification_queue_depth", "mlops_notification_delivery_failures"} <= set(
        families
    )
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404


def test_a_delivery_is_accepted_once_and_forged_or_old_ones_are_refused(stack) -> None:
    base, _env, _hook = stack
    url = f"{base}/mlflow/webhook"
    body = json.dumps(
        {"entity": "model_version", "action": "created", "data": {"name": "nobody", "version": "1"}}
    ).encode()
    headers = signed(body)
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 200
    replay = requests.post(url, data=body, headers=headers, timeout=5)
    assert replay.status_code == 409 and "replay" in replay.json()["error"]
    forged = signed(body, secret="not the secret")
    assert requests.post(url, data=body, headers=forged, timeout=5).status_code == 401
    tampered = requests.post(
        url, data=body.replace(b"nobody", b"someone"), headers=signed(body), timeout=5
    )
    assert tampered.status_code == 401
    old = signed(body, stamp=int(time.time()) - 3600)
    assert requests.post(url, data=body, headers=old, timeout=5).status_code == 401
    unsigned = requests.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert unsigned.status_code == 401 and "unsigned" in unsigned.json()["error"]
    # A body announced far larger than any MLflow payload is refused before it is read.
    connection = http.client.HTTPConnection(urlparse(base).netloc, timeout=5)
    connection.putrequest("POST", "/mlflow/webhook")
    connection.putheader("Content-Length", "5000000")
    connection.endheaders()
    assert connection.getresponse().status == 413

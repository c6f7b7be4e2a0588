"""The worker's HTTP endpoints (the standard library's ThreadingHTTPServer):

- `GET /healthz`: 200 while the panel database answers, else 503;
- `GET /metrics`: Prometheus text format (`worker.metrics`);
- `POST /mlflow/webhook`: MLflow 3 registry webhooks. A delivery must carry MLflow's
  HMAC signature made with MLOPS_MLFLOW_WEBHOOK_SECRET, a timestamp within five minutes
  and a delivery id not seen before; anything else is refused (401 unsigned or forged,
  409 replayed, 503 when no secret is configured). Accepted events are queued for the
  worker (`worker.reactions`) and answered at once, so MLflow never waits on a gate.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from mlops_core.stores.db import get_engine, utcnow
from mlops_core.stores.webhook_receipts import first_receipt
from mlops_core.worker.metrics import worker_registry
from mlops_core.worker.reactions import EVENTS, RegistryEvent
from mlops_core.worker.runner import Worker
from mlops_core.worker.signing import TOLERANCE_SECONDS, verify_mlflow

SECRET_ENV = "MLOPS_MLFLOW_WEBHOOK_SECRET"
WEBHOOK_PATH = "/mlflow/webhook"
# MLflow's payloads are a few hundred bytes; anything far larger is not one.
MAX_BODY_BYTES = 1_000_000
log = logging.getLogger("mlops_core.worker.http")


def registry_event(body: dict[str, Any]) -> RegistryEvent | None:
    """The event a verified MLflow payload describes, if the worker reacts to it."""
    name = f"{body.get('entity')}.{body.get('action')}"
    data = body.get("data")
    if name not in EVENTS or not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    version = data.get("version")
    return RegistryEvent(
        event=name,
        model=data["name"],
        version=None if version is None else str(version),
        alias=data.get("alias"),
        tag=data.get("key"),
    )


class _Handler(BaseHTTPRequestHandler):
    worker: Worker
    server_version = "mlops-worker"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        # Health checks every few seconds would drown the log at INFO.
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, **fields: Any) -> None:
        self._send(code, json.dumps(fields).encode("utf-8"))

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        if self.path == "/healthz":
            try:
                with get_engine(self.worker.settings.db_url).connect() as connection:
                    connection.execute(text("SELECT 1"))
            except Exception:  # noqa: BLE001 - any database failure is "unhealthy"
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, status="database unreachable")
                return
            self._json(HTTPStatus.OK, status="ok", worker=self.worker.name)
        elif self.path == "/metrics":
            jobs = list(self.worker.jobs)
            body = generate_latest(worker_registry(self.worker.settings.db_url, jobs))
            self._send(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)
        else:
            self._json(HTTPStatus.NOT_FOUND, error="not found")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != WEBHOOK_PATH:
            self._json(HTTPStatus.NOT_FOUND, error="not found")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error="body missing or too large")
            return
        body = self.rfile.read(int(length))
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, error=f"{SECRET_ENV} is not set")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        check = verify_mlflow(secret, headers, body, time.time())
        if check.problem:
            log.warning("Refused an MLflow webhook: %s", check.problem)
            self._json(HTTPStatus.UNAUTHORIZED, error=check.problem)
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, error="the body is not JSON")
            return
        name = (
            f"{payload.get('entity')}.{payload.get('action')}" if isinstance(payload, dict) else ""
        )
        keep = timedelta(seconds=2 * TOLERANCE_SECONDS)
        if not first_receipt(
            self.worker.settings.db_url, check.delivery_id, name[:64], utcnow(), keep
        ):
            self._json(HTTPStatus.CONFLICT, error="this delivery was received before (a replay)")
            return
        event = registry_event(payload) if isinstance(payload, dict) else None
        if event is not None:
            self.worker.events.put(event)
        self._json(HTTPStatus.OK, accepted=event is not None)


def make_server(worker: Worker, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"worker": worker})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

"""Sending outbox events to their channels: a signed JSON webhook, Slack, or e-mail.

Every body carries the event's idempotency key: a delivery is at least once (a worker that
dies after sending and before recording sends again), and receivers drop repeats by key.
A failed attempt is recorded and retried after the channel's back-off, doubling each time,
until its attempts run out.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import requests

from mlops_core.errors import ConfigError
from mlops_core.notifications import Channel, NotificationConfig
from mlops_core.redaction import redact
from mlops_core.stores import deliveries
from mlops_core.stores.db import utcnow
from mlops_core.worker.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

MAX_RETRY = timedelta(hours=6)
USER_AGENT = "mlops-control-panel-worker"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def message(config: NotificationConfig, payload: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook body: the outbox payload plus a link to the page it concerns."""
    query = {}
    if payload.get("request_id") is not None and payload["page"] == "approvals":
        query["request"] = payload["request_id"]
    elif payload.get("model"):
        query["model"] = payload["model"]
    body = {k: v for k, v in payload.items() if k != "page"}
    return {**body, "link": config.link(payload["page"], urlencode(query))}


def summary_line(body: dict[str, Any]) -> str:
    """One line for people: what happened, to which model and version, by whom."""
    subject = body.get("model") or "the panel"
    if body.get("version"):
        subject += f" v{body['version']}"
    request = f" (request #{body['request_id']})" if body.get("request_id") is not None else ""
    return f"{body['type']}: {subject}{request} by {body['actor']}"


def _slack_text(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions); names from MLflow are shown as text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _post(channel: Channel, body: bytes, headers: dict[str, str]) -> Outcome:
    try:
        response = requests.post(
            channel.target_url(),
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            timeout=channel.timeout_seconds,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Outcome(False, error=redact(f"{type(exc).__name__}: {exc}"))
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")


def _secret(channel: Channel) -> str:
    value = os.environ.get(channel.secret_env or "", "")
    if not value:
        raise ConfigError(f"channel {channel.name}: {channel.secret_env} is not set.")
    return value


def send_webhook(channel: Channel, body: dict[str, Any]) -> Outcome:
    data = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    stamp = int(time.time())
    return _post(
        channel,
        data,
        {
            SIGNATURE_HEADER: sign(_secret(channel), stamp, data),
            TIMESTAMP_HEADER: str(stamp),
            IDEMPOTENCY_HEADER: body["idempotency_key"],
        },
    )


def send_slack(channel: Channel, body: dict[str, Any]) -> Outcome:
    text = f"{_slack_text(summary_line(body))}"
    if body.get("reason"):
        text += f"\n> {_slack_text(str(body['reason'])[:500])}"
    text += f"\n<{body['link']}|Open in the panel>"
    data = json.dumps({"text": text}).encode("utf-8")
    return _post(channel, data, {IDEMPOTENCY_HEADER: body["idempotency_key"]})


def send_email(channel: Channel, body: dict[str, Any]) -> Outcome:
    mail = EmailMessage()
    mail["Subject"] = f"[MLOps] {summary_line(body)}"
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["X-Idempotency-Key"] = body["idempotency_key"]
    lines = [summary_line(body)]
    if body.get("reason"):
        lines.append(f"Reason: {body['reason']}")
    lines += [f"Open in the panel: {body['link']}", "", json.dumps(body, indent=2)]
    mail.set_content("\n".join(lines))
    try:
        with smtplib.SMTP(
            channel.smtp_host or "", channel.smtp_port, timeout=channel.timeout_seconds
        ) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username_env:
                smtp.login(
                    os.environ.get(channel.username_env, ""),
                    os.environ.get(channel.password_env or "", ""),
                )
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, error=redact(f"{type(exc).__name__}: {exc}"))
    return Outcome(True)


SENDERS = {"webhook": send_webhook, "slack": send_slack, "email": send_email}


def send(channel: Channel, config: NotificationConfig, payload: dict[str, Any]) -> Outcome:
    try:
        return SENDERS[channel.kind](channel, message(config, payload))
    except ConfigError as exc:
        return Outcome(False, error=str(exc))


@dataclass(frozen=True)
class DeliveryRound:
    """What one round of delivery did."""

    fanned_out: int
    delivered: int
    failed: int

    @property
    def summary(self) -> str:
        return f"{self.delivered} delivered, {self.failed} failed, {self.fanned_out} queued"


def deliver_due(db_url: str, config: NotificationConfig, worker: str) -> DeliveryRound:
    """Fan new events out to the channels, then send every due delivery once."""
    fanned = deliveries.fan_out(db_url, config.channels_for, utcnow())
    delivered = failed = 0
    for due in deliveries.claim_due(db_url, utcnow()):
        channel = config.channel(due.channel)
        if channel is None:
            outcome = Outcome(False, error=f"no channel {due.channel} in {config.source}")
            attempts_left = False
        else:
            outcome = send(channel, config, due.payload)
            attempts_left = due.attempts + 1 < channel.max_attempts
        now = utcnow()
        retry_at = None
        if not outcome.ok and attempts_left and channel is not None:
            delay = timedelta(seconds=channel.retry_base_seconds * 2**due.attempts)
            retry_at = now + min(delay, MAX_RETRY)
        deliveries.record_attempt(
            db_url,
            due.id,
            worker,
            now,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error,
            retry_at=retry_at,
        )
        delivered += outcome.ok
        failed += not outcome.ok
    return DeliveryRound(fanned, delivered, failed)

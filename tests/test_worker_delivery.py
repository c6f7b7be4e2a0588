"""Notifications leave through the outbox: signed webhooks, Slack, retries with back-off,
every attempt recorded, an admin's resend; against a real local HTTP receiver."""

from __future__ import annotations

import time
from email import message_from_bytes
from pathlib import Path

import pytest

from mlops_core.config import Settings
from mlops_core.errors import ConfigError, PermissionDenied
from mlops_core.identity import Actor
from mlops_core.notifications import load_notifications, parse_notifications
from mlops_core.stores import audit, db, deliveries
from mlops_core.stores.outbox import EVENT_NAMES
from mlops_core.worker.delivery import deliver_due
from mlops_core.worker.signing import sign, verify
from mlops_core.worker.status import resend
from tests.conftest import settings_for
from tests.receiver import receiver, smtp_server

SECRET = "s" * 40
ALICE = Actor("alice", frozenset({"requester"}), auth_method="token")
ADMIN = Actor("root", frozenset({"admin"}))


def configure(settings: Settings, text: str) -> None:
    (settings.data_dir / "notifications.toml").write_text(text)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    settings = settings_for(tmp_path)
    db.upgrade(settings.db_url)
    return settings


def webhook_channel(url: str, **extra: object) -> str:
    options = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
    return (
        'panel_url = "https://panel.example.com"\n[[channels]]\nname = "hook"\nkind = "webhook"\n'
        f'url = "{url}"\nsecret_env = "TEST_HOOK_SECRET"\n{options}'
    )


def test_a_request_reaches_the_receiver_signed_with_its_idempotency_key(
    settings: Settings,
) -> None:
    with receiver() as hook:
        configure(settings, webhook_channel(hook.url))
        audit.record(settings, ALICE, "request", model="m", version="3", request_id=4, reason="r")
        config = load_notifications(settings, EVENT_NAMES)
        assert deliver_due(settings.db_url, config, "w1").delivered == 1
        [got] = hook.received
    assert got.signed_with(SECRET) and not got.signed_with("another secret")
    body = got.json
    assert (
        body["type"] == "request.created"
        and body["idempotency_key"] == got.headers["idempotency-key"]
    )
    assert (body["model"], body["version"], body["request_id"], body["actor"]) == (
        "m",
        "3",
        4,
        "alice",
    )
    assert body["link"] == "https://panel.example.com/approvals?request=4"
    [logged] = deliveries.delivery_log(settings.db_url)
    assert (logged.status, logged.attempts, logged.channel) == ("delivered", 1, "hook")


def test_a_failed_delivery_is_retried_after_its_back_off_and_every_attempt_recorded(
    settings: Settings,
) -> None:
    with receiver() as hook:
        hook.statuses = [500, 503]
        configure(settings, webhook_channel(hook.url, retry_base_seconds=0.3, max_attempts=3))
        audit.record(settings, ALICE, "rollback", model="m", version="1", request_id=2)
        config = load_notifications(settings, EVENT_NAMES)
        assert deliver_due(settings.db_url, config, "w").failed == 1
        # Not due again before its back-off.
        assert deliver_due(settings.db_url, config, "w").failed == 0
        time.sleep(0.4)
        assert deliver_due(settings.db_url, config, "w").failed == 1
        time.sleep(0.7)
        assert deliver_due(settings.db_url, config, "w").delivered == 1
    [logged] = deliveries.delivery_log(settings.db_url)
    attempts = deliveries.attempts_of(settings.db_url, logged.id)
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 500), (False, 503), (True, 200)]
    assert len(hook.received) == 1


def test_a_delivery_gives_up_after_its_attempts_and_an_admin_can_resend_it(
    settings: Settings,
) -> None:
    with receiver() as hook:
        hook.statuses = [500]
        configure(settings, webhook_channel(hook.url, max_attempts=1))
        audit.record(settings, ALICE, "stale", model="m", version="1", request_id=2)
        config = load_notifications(settings, EVENT_NAMES)
        deliver_due(settings.db_url, config, "w")
        [logged] = deliveries.delivery_log(settings.db_url)
        assert logged.status == "gave_up" and logged.last_error == "HTTP 500"
        with pytest.raises(PermissionDenied):
            resend(settings, ALICE, logged.id)
        resend(settings, ADMIN, logged.id)
        assert deliver_due(settings.db_url, config, "w").delivered == 1
    assert hook.received[0].json["idempotency_key"] == logged.idempotency_key
    assert audit.list_events(settings.db_url)[0].action == "notification_resent"


def test_slack_gets_text_where_names_from_mlflow_cannot_become_markup(settings: Settings) -> None:
    with receiver() as slack:
        configure(
            settings,
            f'[[channels]]\nname = "team"\nkind = "slack"\nurl = "{slack.url}"\n'
            'events = ["alias.moved_outside"]\n',
        )
        audit.record(settings, ALICE, "request", model="m", version="1", request_id=1)
        audit.record(settings, ALICE, "reconcile_warning", model="<!channel> m", version="9")
        deliver_due(settings.db_url, load_notifications(settings, EVENT_NAMES), "w")
        [got] = slack.received
    text = got.json["text"]
    assert text.startswith("alias.moved_outside: &lt;!channel&gt; m v9")
    assert "<!channel>" not in text and "|Open in the panel>" in text


def test_a_missing_secret_fails_the_attempt_and_a_bad_file_names_its_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_HOOK_SECRET")
    configure(settings, webhook_channel("http://127.0.0.1:9/hook", max_attempts=1))
    audit.record(settings, ALICE, "request", model="m", version="1", request_id=1)
    deliver_due(settings.db_url, load_notifications(settings, EVENT_NAMES), "w")
    [logged] = deliveries.delivery_log(settings.db_url)
    assert logged.last_error == "channel hook: TEST_HOOK_SECRET is not set."
    with pytest.raises(ConfigError, match="needs secret_env"):
        parse_notifications(
            '[[channels]]\nname="x"\nkind="webhook"\nurl="http://x"', "f", EVENT_NAMES
        )
    with pytest.raises(ConfigError, match="unknown event"):
        parse_notifications(
            '[[channels]]\nname="x"\nkind="slack"\nurl="http://x"\nevents=["nope"]',
            "f",
            EVENT_NAMES,
        )


def test_the_signature_covers_timestamp_and_body_and_expires() -> None:
    header = sign(SECRET, 1_000_000, b'{"a":1}')
    assert verify(SECRET, header, b'{"a":1}', 1_000_100)
    assert not verify(SECRET, header, b'{"a":2}', 1_000_100)
    assert not verify(SECRET, header, b'{"a":1}', 1_000_400)
    assert not verify("other", header, b'{"a":1}', 1_000_100)


def test_the_example_notifications_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "notifications.example.toml"
    config = parse_notifications(example.read_text(), str(example), EVENT_NAMES)
    assert [c.kind for c in config.channels] == ["webhook"]
    assert set(config.channels[0].events) <= set(EVENT_NAMES)


def test_an_email_channel_sends_the_event_over_smtp(settings: Settings) -> None:
    with smtp_server() as mailbox:
        configure(
            settings,
            f'[[channels]]\nname = "mail"\nkind = "email"\nsmtp_host = "127.0.0.1"\n'
            f'smtp_port = {mailbox.port}\nstarttls = false\nsender = "panel@example.com"\n'
            'to = ["approvers@example.com"]\nevents = ["request.created"]\n',
        )
        audit.record(settings, ALICE, "request", model="m", version="3", request_id=4, reason="r")
        round_ = deliver_due(settings.db_url, load_notifications(settings, EVENT_NAMES), "w")
    assert round_.delivered == 1
    [raw] = mailbox.messages
    mail = message_from_bytes(raw)
    assert mail["Subject"] == "[MLOps] request.created: m v3 (request #4) by alice"
    assert mail["To"] == "approvers@example.com"
    assert "/approvals?request=4" in mail.get_payload()

"""Where notifications go: the channels of `notifications.toml` (MLOPS_NOTIFICATIONS_FILE).

    panel_url = "https://mlops.example.com"   # links in messages point here

    [[channels]]
    name = "reviewers"
    kind = "webhook"                  # JSON body, signed: X-Mlops-Signature
    url = "https://hooks.example.com/mlops"
    secret_env = "MLOPS_WEBHOOK_SECRET"
    events = ["request.created", "request.decided"]   # default: every event

    [[channels]]
    name = "team"
    kind = "slack"                    # a Slack incoming webhook
    url_env = "SLACK_WEBHOOK_URL"     # the URL is itself a secret: read from the environment

    [[channels]]
    name = "approvers-mail"
    kind = "email"
    smtp_host = "smtp.example.com"
    sender = "mlops@example.com"
    to = ["approvers@example.com"]

Secrets are never in the file: a webhook's signing secret, a URL that is a credential and
the SMTP password are named by environment variable. A missing file means no channels; an
invalid one stops the worker with a message naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops_core.config import Settings
from mlops_core.errors import ConfigError

FILE_SETTING = "MLOPS_NOTIFICATIONS_FILE"
Kind = Literal["webhook", "slack", "email"]


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    kind: Kind
    # The event types it receives (see stores.outbox.EVENT_NAMES); empty: every event.
    events: list[str] = Field(default_factory=list)
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    timeout_seconds: float = Field(10, gt=0, le=60)
    max_attempts: int = Field(8, ge=1, le=50)
    retry_base_seconds: float = Field(30, gt=0)
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str | None = None
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.kind in ("webhook", "slack") and (self.url is None) == (self.url_env is None):
            raise ValueError(f"a {self.kind} channel needs exactly one of url or url_env")
        if self.kind == "webhook" and not self.secret_env:
            raise ValueError("a webhook channel needs secret_env: its bodies are always signed")
        if self.kind == "email" and not (self.smtp_host and self.sender and self.to):
            raise ValueError("an email channel needs smtp_host, sender and to")
        return self

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def target_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL, read from the environment when the file names a variable."""
        if self.url is not None:
            return self.url
        env = os.environ if environ is None else environ
        value = env.get(self.url_env or "", "")
        if not value:
            raise ConfigError(f"channel {self.name}: {self.url_env} is not set.")
        return value


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    panel_url: str = "http://127.0.0.1:8501"
    channels: list[Channel] = Field(default_factory=list)
    source: str = "no notifications file"

    @model_validator(mode="after")
    def _unique_names(self) -> NotificationConfig:
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ValueError("channel names must be unique")
        return self

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)

    def channels_for(self, event_type: str) -> list[str]:
        return [c.name for c in self.channels if c.wants(event_type)]

    def link(self, page: str, query: str = "") -> str:
        return f"{self.panel_url.rstrip('/')}/{page}" + (f"?{query}" if query else "")


def notifications_file(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get(FILE_SETTING)
    return Path(value).expanduser().resolve() if value else settings.data_dir / "notifications.toml"


def parse_notifications(
    text: str, source: str, known_events: tuple[str, ...]
) -> NotificationConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Notifications file {source} is not valid TOML: {exc}") from None
    try:
        config = NotificationConfig.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"Notifications file {source} is invalid: {problems}") from None
    for channel in config.channels:
        unknown = sorted(set(channel.events) - set(known_events))
        if unknown:
            raise ConfigError(
                f"Notifications file {source} is invalid: channel {channel.name} names unknown "
                f"event(s) {unknown}; events are {', '.join(known_events)}."
            )
    return config


def load_notifications(settings: Settings, known_events: tuple[str, ...]) -> NotificationConfig:
    """The channels; none when the file does not exist."""
    path = notifications_file(settings)
    if not path.is_file():
        return NotificationConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{FILE_SETTING}: cannot read {path}: {exc.strerror}") from None
    return parse_notifications(text, str(path), known_events)

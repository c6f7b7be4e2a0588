"""The panel's own database: promotion requests, decisions, the audit log, accounts and
their credentials (access tokens, sign-in sessions, sign-in back-off).

MLflow stays the source of truth for models and evidence; this database holds the
workflow and who may act in it, so every replica and process sharing it agrees. The schema
is owned by the Alembic migrations in `migrations/`. On PostgreSQL they may run as the
schema's owner (MLOPS_DB_MIGRATE_URL) while the panel connects as a role that may only do
what the panel does: never rewrite the audit log, nor alter it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from mlops_core.config import Settings
from mlops_core.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
INSUFFICIENT_PRIVILEGE = "42501"
# A request holds its (model, alias) from the request until the apply has finished, or
# until its staged rollout ends.
OPEN_STATUSES = ("pending", "approved", "applying", "rolling_out")
OPEN_REQUEST = text("status IN ('pending', 'approved', 'applying', 'rolling_out')")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class PromotionRequest(Base):
    __tablename__ = "promotion_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    champion_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    requested_by: Mapped[str] = mapped_column(String(255))
    requested_via: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    gates_at_request: Mapped[list] = mapped_column(JSON)
    # The policy file the gates were evaluated under: its sha256 (None: no policy file).
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    policy_source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the current apply claimed the request: an apply quiet for longer has stopped.
    apply_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # At most one open request per (model, alias), enforced by the database itself so
        # that two people requesting at once cannot both succeed.
        Index(
            "uq_open_request_per_alias",
            "model_name",
            "alias",
            unique=True,
            sqlite_where=OPEN_REQUEST,
            postgresql_where=OPEN_REQUEST,
        ),
    )


class Decision(Base):
    __tablename__ = "decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("promotion_request.id"))
    actor: Mapped[str] = mapped_column(String(255))
    actor_via: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    justification: Mapped[str | None] = mapped_column(Text)
    gates: Mapped[list] = mapped_column(JSON)
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    policy_source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("request_id", "actor", name="uq_one_decision_per_actor"),)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    actor_via: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON)
    # A unique previous hash keeps the chain linear: two writers racing to append after the
    # same event cannot both succeed, so the log never forks.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Account(Base):
    """A local account; a service account has no password and signs in only by token."""

    __tablename__ = "account"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list] = mapped_column(JSON)
    email: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccessToken(Base):
    """A personal access token for the CLI; only the SHA-256 of the token is stored.

    No foreign key to the account: a token outlives its account as a record, and removing
    an account revokes its tokens instead.
    """

    __tablename__ = "access_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    username: Mapped[str] = mapped_column(String(64), index=True)
    scopes: Mapped[list] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(255))


class SignInSession(Base):
    """A panel sign-in with a local account; the browser session holds the secret, the
    database only its SHA-256, so every replica can end it (sign-out, password change)."""

    __tablename__ = "sign_in_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class SignInThrottle(Base):
    """Failed sign-ins of one username from one client address, and until when it waits."""

    __tablename__ = "sign_in_throttle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(255))
    client: Mapped[str] = mapped_column(String(64))
    # Rows of unknown usernames are capped, so guessing names cannot fill the table.
    known: Mapped[bool] = mapped_column(Boolean)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime)
    blocked_until: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("username", "client", name="uq_sign_in_throttle_key"),)


def upsert(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can take ON CONFLICT DO UPDATE / DO NOTHING on either engine."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process; SQLite files get their folder created."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(url: str) -> sessionmaker:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def upgrade(url: str, *, app_role: str | None = None, setting: str = "MLOPS_DB_URL") -> None:
    """Bring the panel database to the newest schema; safe to call on every start.

    `app_role`: the role the panel connects as, when `url` is the owner's; the migrations
    grant it its rights. `setting` names `url` in errors.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["app_role"] = app_role
    try:
        with get_engine(url).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigError(
            f"{setting}: cannot open the panel database ({exc.orig}). "
            "Check the URL, that the server is running and that the user may connect."
        ) from None
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != INSUFFICIENT_PRIVILEGE:
            raise
        # The panel's own role at an older schema: only the owner may migrate it.
        reason = str(exc.orig).strip().splitlines()[0]
        raise ConfigError(
            f"{setting}: its user may not change the panel database's schema ({reason}). "
            "Run `python -m mlops_core migrate` with MLOPS_DB_MIGRATE_URL set to the owner's URL."
        ) from None


def migrate(settings: Settings) -> None:
    """Upgrade the schema as the owner when MLOPS_DB_MIGRATE_URL is set, else as the panel."""
    setting = "MLOPS_DB_MIGRATE_URL" if settings.db_migrate_url else "MLOPS_DB_URL"
    upgrade(settings.migrate_url, app_role=settings.db_app_role, setting=setting)

"""The panel database: the same migrations on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from mlops_core.errors import ConfigError
from mlops_core.stores import db


def _open_request(**overrides: object) -> db.PromotionRequest:
    values = dict(
        model_name="churn-predictor",
        alias="champion",
        version="3",
        champion_version="1",
        status="pending",
        requested_by="requester",
        requested_via="local",
        reason="better ROC AUC",
        approvals_required=1,
        gates_at_request=[],
    )
    values.update(overrides)
    return db.PromotionRequest(**values)


def test_migrations_create_the_workflow_schema_and_are_idempotent(panel_db_url: str) -> None:
    db.upgrade(panel_db_url)
    db.upgrade(panel_db_url)
    tables = set(inspect(db.get_engine(panel_db_url)).get_table_names())
    assert {"promotion_request", "decision", "audit_event", "account", "sign_in_throttle"} <= tables
    assert "sign_in_failure" not in tables
    with db.get_engine(panel_db_url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_database_allows_only_one_open_request_per_alias(panel_db_url: str) -> None:
    db.upgrade(panel_db_url)
    sessions = db.session_factory(panel_db_url)
    with sessions.begin() as session:
        session.add(_open_request())
        session.add(_open_request(alias="challenger"))
        session.add(_open_request(status="rejected"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_open_request(version="2", status="approved"))
    # A request being applied still holds its alias.
    with sessions.begin() as session:
        session.add(_open_request(model_name="credit-default", status="applying"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_open_request(model_name="credit-default", version="2"))


def test_unreachable_database_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="MLOPS_DB_URL"):
        db.upgrade("postgresql+psycopg2://nobody@127.0.0.1:1/none")
